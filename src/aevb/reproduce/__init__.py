"""Published experiments as functions: run them, tabulate them, draw them."""

"""What people do with a trained VAE, one module per application, each built on the same
library functions as the CLI (:mod:`aevb.run`, :mod:`aevb.objectives`, :mod:`aevb.io`).

* :mod:`aevb.apps.anomaly`: anomaly scores (negative ELBO, importance-sampled negative
  log-likelihood, An & Cho's reconstruction probability), thresholds and reports;
  :mod:`aevb.apps.anomaly_cli`: ``aevb anomaly fit | score | report``.
* :mod:`aevb.apps.estimator`: ``VAEEstimator`` and ``VAEOutlierDetector``, scikit-learn
  estimators (Pipeline, GridSearchCV, pickling through safetensors + JSON).
* :mod:`aevb.apps.synthetic`: synthetic data (draws from the prior, N per class) written as
  a grid, .npy, .npz, .csv or a folder of PNGs (``aevb sample``).
"""

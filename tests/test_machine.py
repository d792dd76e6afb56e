import platform

from aevb.machine import cpu_model


def test_cpu_model_reads_the_model_name_and_falls_back_to_platform(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9R14\n")
    assert cpu_model(info) == "AMD EPYC 9R14"
    info.write_text("processor\t: 0\n")  # no model name (some ARM kernels)
    fallback = platform.processor() or platform.machine()
    assert cpu_model(info) == fallback == cpu_model(tmp_path / "missing")

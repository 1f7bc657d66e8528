from pyimagesearch.hardware import precision_for_cpu

ZEN5 = "flags\t\t: fpu vme avx2 avx512f avx512_bf16 avx512_vnni\nmodel name\t: AMD EPYC\n"
SAPPHIRE_RAPIDS = "flags\t\t: fpu avx2 avx512f amx_bf16 amx_tile amx_int8\n"
SKYLAKE = "flags\t\t: fpu avx2 avx512f avx512bw avx512_vnni\n"


def test_bfloat16_only_where_the_cpu_has_bf16_units():
    assert precision_for_cpu(ZEN5) == "bfloat16"
    assert precision_for_cpu(SAPPHIRE_RAPIDS) == "bfloat16"
    assert precision_for_cpu(SKYLAKE) == "float32"
    assert precision_for_cpu("") == "float32"

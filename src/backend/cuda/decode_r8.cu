/* The phase kernels (decode.cuh) for up to 8 row(s), every phase and
 * weight type; one file per row template so that they compile in
 * parallel. */
#include "backend/cuda/decode.cuh"

void *cu_phase_kernel_r8(int ph, int wt) { return kernel_of<8>(ph, wt); }

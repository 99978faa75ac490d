/* The phase kernels (decode.cuh) for up to 4 row(s), every phase and
 * weight type; one file per row template so that they compile in
 * parallel. */
#include "backend/cuda/decode.cuh"

void *cu_phase_kernel_r4(int ph, int wt) { return kernel_of<4>(ph, wt); }

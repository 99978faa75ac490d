/* The decode phase kernels for up to 2 rows (decode.cuh), every phase and
 * weight type; one file per row template so that they compile in parallel. */
#include "backend/cuda/decode.cuh"

void *cu_phase_kernel_r2(int ph, int wt) { return phase_kernel_of<2>(ph, wt); }

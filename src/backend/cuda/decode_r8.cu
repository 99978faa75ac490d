/* The decode kernels for up to 8 row(s): the phase kernels (decode.cuh),
 * every phase and weight type, the staged weight phases (staged.cuh) and
 * the stream kernel (stream.cuh); one file per row template so that they
 * compile in parallel. */
#include "backend/cuda/staged.cuh"

void *cu_phase_kernel_r8(int ph, int wt) { return kernel_of<phase_family, 8>(ph, wt); }
void *cu_stream_kernel_r8(void) { return (void *)cu_stream_kernel<8>; }
/* none staged: an 8-row step runs the phase kernels in the staged mode too
 * (cu_decode_launch falls back to them where this gives none) */
void *cu_staged_kernel_r8(int ph, int wt) { return nullptr; }

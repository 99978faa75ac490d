/* The decode kernels for up to 1 row(s): the phase kernels (decode.cuh),
 * every phase and weight type, the staged weight phases (staged.cuh) and
 * the stream kernel (stream.cuh); one file per row template so that they
 * compile in parallel. */
#include "backend/cuda/staged.cuh"

void *cu_phase_kernel_r1(int ph, int wt) { return kernel_of<phase_family, 1>(ph, wt); }
void *cu_stream_kernel_r1(void) { return (void *)cu_stream_kernel<1>; }
void *cu_staged_kernel_r1(int ph, int wt) { return kernel_of<staged_family, 1>(ph, wt); }

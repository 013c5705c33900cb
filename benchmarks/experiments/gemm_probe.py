import os, sys, time
import numpy as np
import mindspore as ms
from mindspore import ops
rt = int(sys.argv[1]) if len(sys.argv) > 1 else 0
if rt:
    ms.set_context(runtime_num_threads=rt)
M,K,N=1024,768,3072
a=ms.Tensor(np.random.rand(M,K).astype(np.float32)); bs=[ms.Tensor(np.random.rand(K,N).astype(np.float32)) for _ in range(10)]
@ms.jit
def g(a,*bs):
    x = ops.matmul(a,bs[0])
    for i in range(1,10):
        x = x + ops.matmul(a,bs[i])
    return x
g(a,*bs).asnumpy()
ts=[]
for _ in range(8):
    t=time.perf_counter(); g(a,*bs).asnumpy(); ts.append(time.perf_counter()-t)
print(os.environ.get("OMP_NUM_THREADS"), "ms rt=%d"%rt, "GFLOP/s med %.1f max %.1f"%(20*M*K*N/np.median(ts)/1e9, 20*M*K*N/np.min(ts)/1e9))

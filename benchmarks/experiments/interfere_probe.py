import os, sys, time
os.environ["OMP_NUM_THREADS"]="2"
import numpy as np, mindspore as ms, torch
from mindspore import ops
ms.set_context(mode=ms.GRAPH_MODE, runtime_num_threads=2)
torch.set_num_threads(2)
shapes = [(768, 2304), (768, 768), (768, 3072), (3072, 768)]
T=1024
xs=[ms.Tensor(np.random.rand(T,k).astype(np.float32)) for k,_ in shapes]
ws=[ms.Tensor(np.random.rand(k,n).astype(np.float32)) for k,n in shapes]
fl=sum(2*T*k*n for k,n in shapes)
@ms.jit
def g(x0,x1,x2,x3,w0,w1,w2,w3):
    return ops.matmul(x0,w0), ops.matmul(x1,w1), ops.matmul(x2,w2), ops.matmul(x3,w3)
def msc():
    o=g(*xs,*ws); o[3].asnumpy()
tx=[torch.rand(T,k) for k,_ in shapes]; tw=[torch.rand(k,n) for k,n in shapes]
def tc():
    for x,w in zip(tx,tw): x@w
def tm(f,n=5):
    t=time.perf_counter()
    for _ in range(n): f()
    return fl/((time.perf_counter()-t)/n)/1e9
msc(); tc()
print("ms alone", [round(tm(msc)) for _ in range(3)])
print("torch alone", [round(tm(tc)) for _ in range(3)])
r=[]
for _ in range(3):
    tc(); r.append(round(tm(msc)))
print("ms right after torch", r)
r=[]
for _ in range(3):
    tc(); time.sleep(0.5); r.append(round(tm(msc)))
print("ms after torch+sleep", r)
r=[]
for _ in range(3):
    msc(); r.append(round(tm(tc)))
print("torch right after ms", r)
r=[]
for _ in range(3):
    msc(); time.sleep(0.5); r.append(round(tm(tc)))
print("torch after ms+sleep", r)

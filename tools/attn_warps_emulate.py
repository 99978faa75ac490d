#!/usr/bin/env python3
# Emulates src/backend/cuda/attn_warps.cuh's fragment mapping for one item in
# plain Python (the m16n8k16 HMMA fragment layouts, the per-lane permutation of
# the dims, the V pairs, the per-head rescale by shuffles, the key groups' merge)
# and compares it with a direct attention: a check of the index algebra that runs
# without a GPU (f16 rounding through struct 'e'). Prints rel L2 per case.
#   python3 tools/attn_warps_emulate.py
import struct, math, random
def h(x): return struct.unpack('e', struct.pack('e', x))[0]
def hilo(x): hi=[h(v) for v in x]; return hi, [h(v-w) for v,w in zip(x,hi)]
def mma(C, a, b):  # C[lane] = [c0..c3]; a[lane] = [(x,y)]*4 ; b[lane] = [(x,y)]*2
    A=[[0.0]*16 for _ in range(16)]; B=[[0.0]*8 for _ in range(16)]
    for l in range(32):
        g,t=l>>2,l&3
        A[g][2*t],A[g][2*t+1]=a[l][0]; A[g+8][2*t],A[g+8][2*t+1]=a[l][1]
        A[g][2*t+8],A[g][2*t+9]=a[l][2]; A[g+8][2*t+8],A[g+8][2*t+9]=a[l][3]
        B[2*t][g],B[2*t+1][g]=b[l][0]; B[2*t+8][g],B[2*t+9][g]=b[l][1]
    for l in range(32):
        g,t=l>>2,l&3
        for e,(m,n) in enumerate([(g,2*t),(g,2*t+1),(g+8,2*t),(g+8,2*t+1)]):
            C[l][e]+=sum(A[m][k]*B[k][n] for k in range(16))
KW=8
def item(q, K, V, hd, GQ):  # q[g][d] (scaled), K[p][d], V[p][d] (f16 values), n = len(K)
    n=len(K); NS,D=hd//16,hd//4
    qa=[[None]*32 for _ in range(NS)]
    for s in range(NS):
        for l in range(32):
            g,t=l>>2,l&3
            x=[q[g][D*t+4*s+e] if g<GQ else 0.0 for e in range(4)]
            qa[s][l]=hilo(x)
    wm=[[-math.inf]*8 for _ in range(KW)]; wl=[[0.0]*8 for _ in range(KW)]
    wo=[[[0.0]*hd for _ in range(GQ)] for _ in range(KW)]
    nch=(n+15)//16
    for w in range(KW):
        mrun=[-math.inf]*32; lrun=[0.0]*32; o=[[[0.0]*4 for _ in range(32)] for _ in range(NS)]
        for ch in range(w,nch,KW):
            p0=16*ch
            sh=[[[0.0]*4 for _ in range(32)] for _ in range(2)]
            for s in range(NS):
                for nt in range(2):
                    a_hi=[];a_lo=[];b=[]
                    for l in range(32):
                        g,t=l>>2,l&3
                        p=p0+nt*8+g
                        krow=K[p] if p<n else [0.0]*hd
                        seg=krow[D*t:D*t+D]  # the lane's contiguous dims
                        b.append(((seg[4*s],seg[4*s+1]),(seg[4*s+2],seg[4*s+3])))
                        hi,lo=qa[s][l]
                        a_hi.append(((hi[0],hi[1]),(0,0),(hi[2],hi[3]),(0,0)))
                        a_lo.append(((lo[0],lo[1]),(0,0),(lo[2],lo[3]),(0,0)))
                    mma(sh[nt],a_hi,b); mma(sh[nt],a_lo,b)
            alpha=[0.0]*32; pr=[None]*32
            sc=[[0.0]*4 for _ in range(32)]
            for l in range(32):
                t=l&3
                for e in range(4):
                    nt=e>>1; p=p0+nt*8+2*t+(e&1)
                    sc[l][e]=sh[nt][l][e&1] if p<n else -math.inf
            for l in range(32):
                grp=[x for x in range(32) if x>>2==l>>2]
                mx=max(max(sc[x]) for x in grp)
                mnew=max(mrun[l],mx)
                alpha[l]=math.exp(mrun[l]-mnew) if mrun[l]!=-math.inf else 0.0
                pr[l]=[math.exp(v-mnew) if v!=-math.inf else 0.0 for v in sc[l]]
                lrun[l]=lrun[l]*alpha[l]+sum(pr[l]); mrun[l]=mnew
            for mt in range(NS):
                a=[];bh=[];bl=[]
                for l in range(32):
                    g,t=l>>2,l&3
                    def vv(pp,dim): return V[pp][dim] if pp<n else 0.0
                    rows=[p0+2*t,p0+2*t+1,p0+2*t+8,p0+2*t+9]
                    d0=NS*g+mt; d1=NS*(g+8)+mt
                    a.append(((vv(rows[0],d0),vv(rows[1],d0)),(vv(rows[0],d1),vv(rows[1],d1)),
                              (vv(rows[2],d0),vv(rows[3],d0)),(vv(rows[2],d1),vv(rows[3],d1))))
                    hi,lo=hilo(pr[l])
                    bh.append(((hi[0],hi[1]),(hi[2],hi[3]))); bl.append(((lo[0],lo[1]),(lo[2],lo[3])))
                    a0=alpha[8*t]; a1=alpha[8*t+4]
                    o[mt][l][0]*=a0; o[mt][l][2]*=a0; o[mt][l][1]*=a1; o[mt][l][3]*=a1
                mma(o[mt],a,bh); mma(o[mt],a,bl)
        for l in range(32):
            g,t=l>>2,l&3
            tot=sum(lrun[x] for x in range(32) if x>>2==g)
            if g<GQ and t==0: wm[w][g]=mrun[l]; wl[w][g]=tot
            for mt in range(NS):
                for e in range(4):
                    hh=2*t+(e&1); d=NS*(g+8*(e>>1))+mt
                    if hh<GQ: wo[w][hh][d]=o[mt][l][e]
    out=[[0.0]*hd for _ in range(GQ)]
    for g in range(GQ):
        mx=max(wm[w][g] for w in range(KW)); l=0.0; acc=[0.0]*hd
        for w in range(KW):
            f=math.exp(wm[w][g]-mx) if wl[w][g]>0 else 0.0
            l+=f*wl[w][g]
            for d in range(hd): acc[d]+=f*wo[w][g][d]
        out[g]=[a/l for a in acc]
    return out
def ref(q,K,V,hd,GQ):
    out=[]
    for g in range(GQ):
        s=[sum(q[g][d]*k[d] for d in range(hd)) for k in K]; m=max(s); e=[math.exp(x-m) for x in s]; L=sum(e)
        out.append([sum(e[p]*V[p][d] for p in range(len(K)))/L for d in range(hd)])
    return out
random.seed(1)
for hd,GQ,n in [(32,1,1),(32,4,17),(64,1,40),(64,2,100),(96,1,33),(96,8,129),(96,1,200),(128,2,70),(128,1,150)]:
    q=[[random.gauss(0,1)/math.sqrt(hd) for _ in range(hd)] for _ in range(8)]
    K=[[h(random.gauss(0,1)) for _ in range(hd)] for _ in range(n)]
    V=[[h(random.gauss(0,1)) for _ in range(hd)] for _ in range(n)]
    a=item(q,K,V,hd,GQ); r=ref(q,K,V,hd,GQ)
    err=math.sqrt(sum((x-y)**2 for A,R in zip(a,r) for x,y in zip(A,R))/sum(y*y for R in r for y in R))
    print(f"hd {hd} GQ {GQ} n {n}: rel L2 {err:.2e}")

# Merges the phase marks of bench/gcroot_phases.sh (client c*.err files and the daemon log,
# which has the worker's stderr too) and prints the median of each phase over the runs.
import sys,glob,statistics
def marks(T):
    dl=[l.split() for l in open(T+'/daemon.log') if l.startswith('phase ')]
    res=[]
    for f in sorted(glob.glob(T+'/c*.err')):
        pass
        cl=[l.split() for l in open(f) if l.startswith('phase ')]
        s=int([x for x in cl if x[2]=='start'][0][3]); e=int([x for x in cl if x[2]=='end'][0][3])
        m={}
        for x in cl+dl:
            t=int(x[3])
            if s<=t<=e: m.setdefault(x[1]+':'+x[2],t)
        res.append(m)
    return res
spans=[("client start (exec, libraries, main)","shell:start","client:analyze"),
("session RPC to the daemon","client:analyze","daemon:session"),
("worker start (spawn, exec, dynamic loading)","daemon:session",["daemon:reuse","worker:main"]),
("dump open + DAC load (+open handshake)",["daemon:reuse","worker:main"],"client:opened"),
("command to the worker","client:opened","worker:gcroot-start"),
("graph map + roots","worker:gcroot-start","worker:gcroot-roots"),
("search","worker:gcroot-roots","worker:gcroot-path-found"),
("rows (MethodTables)","worker:gcroot-path-found","worker:gcroot-rows"),
("text formatting (+ held)","worker:gcroot-rows","worker:gcroot-searched"),
("frames worker->daemon->client, printing","worker:gcroot-searched","client:done-printed"),
("session end, client exit","client:done-printed","shell:end"),
("total","shell:start","shell:end")]
def get(m,k):
    if isinstance(k,list):
        for kk in k:
            if kk in m: return m[kk]
        return None
    return m.get(k)
for T in sys.argv[1:]:
    print(T)
    rs=marks(T)
    for name,a,b in spans:
        v=[(get(m,b)-get(m,a))/1000 for m in rs if get(m,a) is not None and get(m,b) is not None]
        print("  %-45s %7.1f ms  (n=%d)"%(name,statistics.median(v) if v else float('nan'),len(v)))

#!/usr/bin/env python3
"""zt serve throughput: aggregate generated tokens per second and time to
first token with 1, 8 and 32 concurrent streams.

The Python twin of bench/server/throughput.mjs, for machines that have
python3 but no node (the GPU machine): the same method, the same JSON
lines and the same markdown table, so the two can sit side by side in
bench/results/. Standard library only.

usage: python3 bench/server/throughput.py [--zt PATH] [--model PATH]
           [--backend B] [--seconds S] [--levels 1,8,32] [--parallel N]
           [--ctx N] [--queue N] [--max-tokens N] [--threads N]
           [--client-procs N] [--start-timeout S] [--server-log FILE]
           [--server-arg ARG ...]

Method (as in the .mjs): one server (`zt serve MODEL --parallel 32 --ctx
512 --queue 64`, on a free loopback port). For each level C, C clients
each send streamed /v1/completions requests back to back (one of 8
Bible-style prompts, greedy, max_tokens 128) for S seconds, then finish the
request in flight. Aggregate tok/s = completion tokens of all requests
(the server's usage counts) / wall time from the first request to the last
response. TTFT = request sent -> first text chunk, measured by the client
over loopback. Per-stream tok/s = (tokens - 1) / (last chunk - first
chunk). rows/step = forward rows per engine step, from /metrics. Each level
starts with one warm-up request. A request whose tokens all decode to no
text (a random-weight model can do that) counts in the tokens but not in
the TTFT and per-stream columns; its row then says no_text_requests.

Clients are threads, each with its own connection per request; the
interpreter's switch interval is lowered so that a thread whose socket
turns readable gets to run (and stamp its time) within a fraction of a
millisecond. With many streams on a many-core machine the threads are
spread over a few processes (--client-procs; auto: one per 8 streams, at
most a quarter of the cores) so that one interpreter lock does not cap the
rate at which events are read; one process reads ~50k events/s on the
2-core development machine, far above what the server streams there. The
closing "client CPU" line says what the client itself cost.
"""
import argparse
import datetime
import http.client
import json
import multiprocessing
import os
import platform
import queue
import re
import signal
import subprocess
import sys
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
PROMPTS = [
    'And the LORD spake unto Moses, saying', 'And it came to pass after these things, that',
    'Now these are the generations of', 'And God said unto Noah,', 'In the beginning',
    'And the children of Israel journeyed from', 'Hear, O Israel:',
    'And Moses went up from the plains of Moab',
]


def parse_args():
    p = argparse.ArgumentParser(description='zt serve throughput at several stream counts')
    p.add_argument('model_pos', nargs='?', metavar='MODEL', help='same as --model')
    p.add_argument('--zt', default=os.environ.get('ZT', os.path.join(ROOT, 'build', 'zt')),
                   help='the zt binary (default: $ZT, else build/zt)')
    p.add_argument('--model', default=None,
                   help='GGUF model (default: models/zt-demo-15m-f16.gguf)')
    p.add_argument('--backend', default=None, help='passed to zt serve --backend')
    p.add_argument('--seconds', type=float, default=30.0, help='seconds per level (30)')
    p.add_argument('--levels', default='1,8,32', help='stream counts (1,8,32)')
    p.add_argument('--parallel', type=int, default=32, help='zt serve --parallel (32)')
    p.add_argument('--ctx', type=int, default=512, help='zt serve --ctx (512)')
    p.add_argument('--queue', type=int, default=64, help='zt serve --queue (64)')
    p.add_argument('--threads', type=int, default=None, help='zt serve --threads')
    p.add_argument('--max-tokens', type=int, default=128, help='max_tokens per request (128)')
    p.add_argument('--start-timeout', type=float, default=180.0,
                   help='seconds to wait for the server to listen and answer /health (180)')
    p.add_argument('--client-procs', type=int, default=0,
                   help='client processes per level (0: auto, one per 8 streams, at most '
                        'cores/4)')
    p.add_argument('--server-log', default=None, help="append the server's stderr to FILE")
    p.add_argument('--server-arg', action='append', default=[],
                   help='one more argument for zt serve (repeatable)')
    a = p.parse_args()
    if a.model and a.model_pos:
        p.error('give the model once (--model or MODEL)')
    a.model = a.model or a.model_pos or os.path.join(ROOT, 'models', 'zt-demo-15m-f16.gguf')
    try:
        a.levels = [int(x) for x in a.levels.split(',') if x.strip()]
    except ValueError:
        p.error(f'--levels wants comma-separated integers, got {a.levels!r}')
    if not a.levels or min(a.levels) < 1:
        p.error('--levels wants stream counts of at least 1')
    if a.seconds <= 0 or a.max_tokens < 1:
        p.error('--seconds and --max-tokens must be positive')
    return a


class Server:
    """`zt serve MODEL --host 127.0.0.1 --port 0 ...`: started, waited for
    (its "listening on" line, then GET /health), stopped (SIGTERM, then
    SIGKILL after 5 s)."""

    def __init__(self, args):
        cmd = [args.zt, 'serve', args.model, '--host', '127.0.0.1', '--port', '0',
               '--parallel', str(args.parallel), '--ctx', str(args.ctx), '--queue', str(args.queue)]
        if args.backend:
            cmd += ['--backend', args.backend]
        if args.threads is not None:
            cmd += ['--threads', str(args.threads)]
        cmd += args.server_arg
        self.cmd = cmd
        self.log_path = args.server_log
        self.log = ''
        self.lock = threading.Lock()
        self.listening = threading.Event()
        self.port = None
        self.banner = None
        self.stopped = False
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE)
        except OSError as e:
            raise RuntimeError(f'cannot start {args.zt}: {e}') from None
        self.reader = threading.Thread(target=self._read_stderr, daemon=True)
        self.reader.start()

    def _read_stderr(self):
        for raw in iter(self.proc.stderr.readline, b''):
            line = raw.decode('utf-8', 'replace')
            with self.lock:
                self.log += line
            m = re.search(r'listening on http://127\.0\.0\.1:(\d+)/', line)
            if m and not self.listening.is_set():
                self.port = int(m.group(1))
                self.banner = line.strip()
                self.listening.set()
        self.listening.set()  # the server ended: wake the waiter

    def stderr(self):
        with self.lock:
            return self.log

    def wait_ready(self, timeout):
        end = time.monotonic() + timeout
        self.listening.wait(timeout)
        if self.port is None:
            self.stop()
            why = (f'exited ({self.proc.returncode})' if self.proc.poll() is not None
                   else f'did not start in {timeout:.0f} s')
            raise RuntimeError(f'zt serve {why}: {self.stderr().strip()}')
        while True:
            try:
                status, _ = http_get(self.port, '/health')
                if status == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > end:
                self.stop()
                raise RuntimeError(f'zt serve never answered /health: {self.stderr().strip()}')
            time.sleep(0.05)

    def stop(self):
        if self.stopped:
            return
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(2)
        if self.log_path:
            with open(self.log_path, 'a', encoding='utf-8') as f:
                f.write(f'== {" ".join(self.cmd)}\n{self.stderr()}')


def http_get(port, path, timeout=10):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    try:
        conn.request('GET', path)
        res = conn.getresponse()
        return res.status, res.read().decode('utf-8', 'replace')
    finally:
        conn.close()


def metrics(port):
    """Prometheus text -> {name{labels}: number}."""
    status, text = http_get(port, '/metrics')
    if status != 200:
        raise RuntimeError(f'/metrics answered HTTP {status}')
    out = {}
    for line in text.split('\n'):
        if not line or line.startswith('#'):
            continue
        parts = line.split()
        if len(parts) >= 2:
            try:
                out[parts[0]] = float(parts[1])
            except ValueError:
                pass
    return out


def one_request(port, prompt, max_tokens):
    """One streamed /v1/completions; returns {ttft (ms), tokens, stream_rate,
    end (perf_counter s)}."""
    body = json.dumps({'prompt': prompt, 'temperature': 0, 'max_tokens': max_tokens,
                       'stream': True, 'stream_options': {'include_usage': True}})
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=300)
    try:
        conn.request('POST', '/v1/completions', body=body,
                     headers={'Content-Type': 'application/json'})
        res = conn.getresponse()
        if res.status != 200:
            raise RuntimeError(f'HTTP {res.status}: {res.read().decode("utf-8", "replace")}')
        buf = b''
        t_first = t_last = None
        tokens = 0
        done = False
        while not done:
            chunk = res.read1(65536)  # what has arrived, chunked framing undone
            if not chunk:
                break
            buf += chunk
            while not done:
                at = buf.find(b'\n\n')
                if at < 0:
                    break
                event, buf = buf[:at], buf[at + 2:]
                data = '\n'.join(line[5:].lstrip() for line in
                                 event.decode('utf-8').split('\n') if line.startswith('data:'))
                if data == '[DONE]':
                    done = True
                    break
                msg = json.loads(data)
                if msg.get('error'):
                    raise RuntimeError(f'stream error: {msg["error"].get("message")}')
                if msg.get('usage'):
                    tokens = msg['usage']['completion_tokens']
                choices = msg.get('choices') or []
                if choices and choices[0].get('text'):
                    t_last = time.perf_counter()
                    if t_first is None:
                        t_first = t_last
    finally:
        conn.close()
    end = time.perf_counter()
    if not done:
        raise RuntimeError('the stream ended without [DONE]')
    if t_first is None:  # every token decoded to nothing (possible with random weights)
        return {'ttft': None, 'tokens': tokens, 'stream_rate': None, 'end': end}
    rate = (tokens - 1) / (t_last - t_first) if tokens > 1 and t_last > t_first else 0.0
    return {'ttft': (t_first - t0) * 1000, 'tokens': tokens, 'stream_rate': rate, 'end': end}


def pct(xs, p):
    s = sorted(xs)
    return s[min(len(s) - 1, int(p * len(s)))]


def run_clients(port, ks, t0, seconds, max_tokens):
    """Clients ks (one thread each) send requests back to back until
    `seconds` after t0; returns (results, errors)."""
    results, errors = [], []
    lock = threading.Lock()

    def client(k):
        i = 0
        try:
            while time.perf_counter() - t0 < seconds:
                r = one_request(port, PROMPTS[(k + i) % len(PROMPTS)], max_tokens)
                with lock:
                    results.append(r)
                i += 1
        except Exception as e:  # noqa: BLE001 -- reported after the level
            with lock:
                errors.append(f'client {k}: {e}')

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in ks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


def client_proc(port, ks, seconds, max_tokens, ready, go, t0v, out):
    """One client process of a level (--client-procs > 1): says it is
    ready, waits for the common start time, runs its clients, sends back
    (results, errors, CPU seconds)."""
    sys.setswitchinterval(0.0005)
    c0 = os.times()
    ready.put(True)
    go.wait()
    results, errors = run_clients(port, ks, t0v.value, seconds, max_tokens)
    c1 = os.times()
    out.put((results, errors, c1.user - c0.user + c1.system - c0.system))


def client_procs_for(streams, wanted):
    """--client-procs 0 (auto): one process for every 8 streams, at most
    a quarter of the cores (the server needs the rest), at least one."""
    if wanted > 0:
        return min(wanted, streams)
    return max(1, min(streams // 8, (os.cpu_count() or 1) // 4))


def queue_get(q, procs, timeout):
    """q.get() that gives up when a client process died or time ran out."""
    end = time.monotonic() + timeout
    while True:
        try:
            return q.get(timeout=0.5)
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f'a client process failed (exit {dead[0]})') from None
            if time.monotonic() > end:
                raise RuntimeError('client processes did not answer in time') from None


CHILD_CPU = [0.0]  # CPU seconds of client processes, for the closing line


def run_level(port, streams, seconds, max_tokens, procs=1):
    one_request(port, PROMPTS[0], max_tokens)  # warm-up
    m0 = metrics(port)
    if procs <= 1:
        t0 = time.perf_counter()
        results, errors = run_clients(port, range(streams), t0, seconds, max_tokens)
    else:
        # clients spread over processes, so that one interpreter's lock does
        # not cap the rate at which events are read; perf_counter is
        # CLOCK_MONOTONIC, one clock for all of them
        ctx = multiprocessing.get_context('spawn')
        ready, out, go, t0v = ctx.Queue(), ctx.Queue(), ctx.Event(), ctx.Value('d', 0.0)
        ps = [ctx.Process(target=client_proc, daemon=True,
                          args=(port, list(range(p, streams, procs)), seconds, max_tokens,
                                ready, go, t0v, out)) for p in range(procs)]
        for pr in ps:
            pr.start()
        for _ in ps:
            queue_get(ready, ps, 60)
        t0 = time.perf_counter()
        t0v.value = t0
        go.set()
        results, errors = [], []
        for _ in ps:
            r, e, cpu = queue_get(out, ps, seconds + 600)
            results += r
            errors += e
            CHILD_CPU[0] += cpu
        for pr in ps:
            pr.join()
    if errors:
        raise RuntimeError(f'{len(errors)} of {streams} clients failed; first: {errors[0]}')
    wall = max(r['end'] for r in results) - t0
    m1 = metrics(port)
    tokens = sum(r['tokens'] for r in results)
    steps = m1['zt_engine_steps_total'] - m0['zt_engine_steps_total']
    rows = m1['zt_engine_rows_total'] - m0['zt_engine_rows_total']
    timed = [r for r in results if r['ttft'] is not None]
    ttfts = [r['ttft'] for r in timed]
    row = {
        'streams': streams, 'requests': len(results), 'tokens': tokens,
        'wall_s': f'{wall:.1f}', 'agg_tok_s': f'{tokens / wall:.1f}',
        'ttft_ms_p50': f'{pct(ttfts, 0.5):.0f}' if timed else 'n/a',
        'ttft_ms_p90': f'{pct(ttfts, 0.9):.0f}' if timed else 'n/a',
        'stream_tok_s_p50': f'{pct([r["stream_rate"] for r in timed], 0.5):.1f}' if timed else 'n/a',
        'rows_per_step': f'{rows / steps:.1f}' if steps > 0 else 'n/a',
    }
    if len(timed) < len(results):  # not in the .mjs's rows: TTFT leaves these out
        row['no_text_requests'] = len(results) - len(timed)
    return row


def cpu_model():
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def mem_gib():
    try:
        with open('/proc/meminfo', encoding='utf-8') as f:
            for line in f:
                if line.startswith('MemTotal:'):
                    return int(line.split()[1]) / 2 ** 20
    except OSError:
        pass
    return 0.0


def loadavg():
    try:
        return ' '.join(f'{x:.2f}' for x in os.getloadavg())
    except OSError:
        return 'n/a'


def on_sigterm(signum, frame):
    raise KeyboardInterrupt


def main():
    args = parse_args()
    sys.setswitchinterval(0.0005)
    now = datetime.datetime.now(datetime.timezone.utc)
    print(f'# zt serve throughput, {now.strftime("%Y-%m-%dT%H:%M:%S.")}{now.microsecond // 1000:03d}Z')
    print(f'machine: {os.cpu_count()} x {cpu_model()}, {mem_gib():.0f} GiB')
    print(f'load average before: {loadavg()}')
    print(f'zt: {args.zt}\nmodel: {args.model}')
    print(f'backend: {args.backend or "(default)"}; server --parallel {args.parallel} --ctx {args.ctx} '
          f'--queue {args.queue}' + (f' --threads {args.threads}' if args.threads is not None else '')
          + (' ' + ' '.join(args.server_arg) if args.server_arg else ''))
    print(f'method: {args.seconds:g} s per level, streamed /v1/completions, greedy, '
          f'max_tokens {args.max_tokens} (client: python {platform.python_version()}, threads)')
    sys.stdout.flush()

    # SIGTERM (timeout(1), a deadline) unwinds like Ctrl-C: the server is
    # stopped and the levels done so far are still printed
    signal.signal(signal.SIGTERM, on_sigterm)
    t_load = time.perf_counter()
    try:
        srv = Server(args)
    except RuntimeError as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    rows = []
    rc = 0
    cpu0, wall0 = os.times(), time.perf_counter()
    try:
        srv.wait_ready(args.start_timeout)
        print(f'server: {srv.banner} (ready in {time.perf_counter() - t_load:.1f} s)\n')
        sys.stdout.flush()
        for c in args.levels:
            procs = client_procs_for(c, args.client_procs)
            row = run_level(srv.port, c, args.seconds, args.max_tokens, procs)
            rows.append(row)
            print(json.dumps(row, separators=(',', ':')))
            sys.stdout.flush()
    except (RuntimeError, OSError, ValueError, KeyError) as e:
        print(f'error: {e}', file=sys.stderr)
        rc = 1
    except KeyboardInterrupt:
        print('error: interrupted; the levels done so far follow', file=sys.stderr)
        rc = 1
    finally:
        srv.stop()
        if srv.proc.returncode not in (0, -signal.SIGTERM):
            print(f'warning: zt serve ended with status {srv.proc.returncode}; its last lines:\n'
                  + '\n'.join(srv.stderr().strip().split('\n')[-5:]), file=sys.stderr)

    print('\n| streams | requests | tokens | wall s | aggregate tok/s | TTFT p50 ms | TTFT p90 ms '
          '| per-stream tok/s p50 | rows/step |')
    print('|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    for r in rows:
        print(f'| {r["streams"]} | {r["requests"]} | {r["tokens"]} | {r["wall_s"]} | {r["agg_tok_s"]} '
              f'| {r["ttft_ms_p50"]} | {r["ttft_ms_p90"]} | {r["stream_tok_s_p50"]} '
              f'| {r["rows_per_step"]} |')
    cpu1 = os.times()
    cpu = cpu1.user - cpu0.user + cpu1.system - cpu0.system + CHILD_CPU[0]
    print(f'\nclient CPU: {cpu:.1f} s over {time.perf_counter() - wall0:.1f} s wall '
          f'(python, all client threads and processes; levels ran with '
          + ', '.join(f'{c}: {client_procs_for(c, args.client_procs)}' for c in args.levels)
          + ' client processes)')
    print(f'load average after: {loadavg()}')
    try:
        ps = subprocess.run(['ps', '-eo', 'pcpu,comm', '--sort=-pcpu'], capture_output=True,
                            text=True, timeout=5, check=False)
        print('busiest processes at the end:\n' + '\n'.join(ps.stdout.split('\n')[:6]))
    except (OSError, subprocess.TimeoutExpired):
        pass
    return rc


if __name__ == '__main__':
    sys.exit(main())

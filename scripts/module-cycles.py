#!/usr/bin/env python3
"""Import cycles between the crate's modules (ARCHITECTURE.md: "no module imports one that
imports it back"). Reads every file under src/ (tests modules and comments left out), takes
each `crate::`/`super::` path and each path a mod.rs names below itself, resolves it to the
deepest module file that exists (an item a mod.rs re-exports with `pub use child::Name` counts
as the child's), and reports every group of modules that reach each other. Exit 1 if any.
A text heuristic, not a compiler: macros and glob imports are not followed.

Usage: scripts/module-cycles.py [SRC_DIR] [-v]   (-v lists every module's edges)
       scripts/module-cycles.py --self-test    (shows it finds a planted cycle through `super::`)"""
import os, re, subprocess, sys, tempfile
if '--self-test' in sys.argv:
    # A cycle whose one edge is `super::` inside a mod.rs: `super` there is the parent module.
    with tempfile.TemporaryDirectory() as tree:
        os.makedirs(os.path.join(tree, 'a'))
        for name, text in {'lib.rs': 'mod a;\nmod b;\n', 'a/mod.rs': 'use super::b::f;\npub fn g() {}\n',
                           'b.rs': 'use crate::a::g;\npub fn f() {}\n'}.items():
            open(os.path.join(tree, name), 'w').write(text)
        run = subprocess.run([sys.executable, __file__, tree], capture_output=True, text=True)
        found = run.returncode == 1 and 'cycle: a <-> b' in run.stdout
        print('self-test:', 'the planted cycle is found' if found else 'MISSED the planted cycle\n' + run.stdout)
        sys.exit(0 if found else 1)
args = [a for a in sys.argv[1:] if not a.startswith('-')]
root = args[0] if args else 'src'
files = {}
for d, _, fs in os.walk(root):
    for f in fs:
        if f.endswith('.rs') and not (f == 'main.rs' and d == root):
            p = os.path.join(d, f)
            rel = os.path.relpath(p, root)[:-3]
            parts = rel.split('/')
            if parts[-1] in ('mod', 'lib', 'main'):
                parts = parts[:-1]
            files[tuple(parts)] = p
def strip_tests(text):
    i = text.find('#[cfg(test)]\nmod tests')
    return text if i < 0 else text[:i]
reexports = {}  # (module, Name) -> child module path
for mod, p in files.items():
    for m in re.finditer(r'pub use (\w+)::\{?([\w, ]+)\}?;', open(p).read()):
        for name in m.group(2).split(','):
            reexports[(mod, name.strip())] = mod + (m.group(1),)
def resolve(path):
    # deepest existing module; then follow a re-export of the next segment
    for n in range(len(path), -1, -1):
        if tuple(path[:n]) in files:
            mod = tuple(path[:n])
            if n < len(path) and (mod, path[n]) in reexports:
                return reexports[(mod, path[n])]
            return mod
    return None
edges = {m: set() for m in files}
for mod, p in files.items():
    text = strip_tests(open(p).read())
    text = re.sub(r'//.*', '', text)
    for m in re.finditer(r'\b((?:crate|super)(?:::\w+)+|(?:crate|super)(?=::\{))(?:::\{([^}]*)\})?', text):
        segs = m.group(1).split('::')
        if segs[0] == 'crate':
            base = []
            segs = segs[1:]
        else:
            # `super` is the parent module, in a mod.rs as in any other file.
            base = list(mod[:-1])
            segs = segs[1:]
            while segs and segs[0] == 'super':
                base = base[:-1]; segs = segs[1:]
        names = [s.strip().split(' ')[0].split('::')[0] for s in (m.group(2) or '').split(',') if s.strip()] or [None]
        for name in names:
            full = base + segs + ([name] if name and name != 'self' else [])
            target = resolve(full)
            if target is not None and target != mod:
                edges[mod].add(target)
# relative paths from a module to its own children: `use writer::X`, `writer::f(...)`
for mod, p in files.items():
    text = re.sub(r'//.*', '', strip_tests(open(p).read()))
    owner = list(mod) if files[mod].endswith(('mod.rs', 'lib.rs', 'main.rs')) else None
    if owner is None:
        continue
    for m in re.finditer(r'(?<![:\w])(\w+)::(\{[^}]*\}|\w+)', text):
        child = tuple(owner + [m.group(1)])
        if child in files and child != mod:
            names = [n.strip().split(' ')[0].split('::')[0] for n in m.group(2).strip('{}').split(',') if n.strip()]
            for name in names:
                target = resolve(list(child) + ([name] if name != 'self' else []))
                if target is not None and target != mod:
                    edges[mod].add(target)
# cycles: strongly connected components
index = {}; low = {}; stack = []; on = set(); out = []; counter = [0]
def strong(v):
    index[v] = low[v] = counter[0]; counter[0] += 1; stack.append(v); on.add(v)
    for w in edges[v]:
        if w not in index:
            strong(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: out.append(comp)
sys.setrecursionlimit(10000)
for v in files:
    if v not in index: strong(v)
name = lambda m: '::'.join(m) or 'crate'
if '-v' in sys.argv:
    for m in sorted(edges): print(name(m), '->', ', '.join(sorted(name(t) for t in edges[m])))
for comp in out:
    print('cycle:', ' <-> '.join(sorted(name(m) for m in comp)))
    for m in comp:
        print('   ', name(m), '->', ', '.join(sorted(name(t) for t in edges[m] if t in comp)))
print(len(out), 'cycles among', len(files), 'modules')
sys.exit(1 if out else 0)

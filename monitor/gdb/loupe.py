# loupe.py — gdb commands that list a loupe process's loops and tasks from its
# memory: for when the console cannot answer (the process is wedged, a loop
# thread holds a lock, the console is off) or all there is is a core file.
# They read the task registry the console reads, through the program's debug
# information (a RelWithDebInfo or Debug build; -g1 is not enough), and call
# nothing in the process, so they work on a live process and on a core alike:
#
#   gdb -p PID -batch -x /usr/local/share/loupe/gdb/loupe.py -ex 'loupe tasks'
#   gdb ./server core.1234 -x .../loupe.py -ex 'loupe where 17'
#   (gdb) source .../loupe.py      # once per session, or in ~/.gdbinit
#
#   loupe tasks [FILTER]   every live task, as the console's `ps --all`: id,
#                          loop, state, suspended for, name, the wait and its
#                          co_await's file:line, the request; FILTER keeps tasks
#                          whose name, route or target contains it
#   loupe where ID         one task: its wait and file:line, spawn site,
#                          request, parents, and the await chain (each task it
#                          awaits in turn, with file:line)
#   loupe loops            each loop: its thread (gdb's thread number, for
#                          `thread N` then `bt`), the callback running now, of
#                          which task, for how long, and the live task count
#
# Times in a live process are read against its steady clock; in a core file
# they are dated from the core's modification time (said so in the output).
# Installed with the package (share/loupe/gdb/loupe.py); CPython's
# `python -m asyncio ps PID` and userver's `utask list` are the models.

import os
import re
import time

import gdb

STATES = ["scheduled", "running", "suspended", "done"]


# ---- reading the process's memory -------------------------------------------

def _target(v):
    return v.type.strip_typedefs()


def _unique_ptr(v):
    """The pointer a std::unique_ptr<T> (default deleter) holds: its first word."""
    t = _target(v).template_argument(0)
    return v.address.cast(t.pointer().pointer()).dereference()


def _atomic(v):
    """The value of a std::atomic<T>: a T at the atomic's address."""
    t = _target(v).template_argument(0)
    return v.address.cast(t.pointer()).dereference()


def _string(v):
    """A std::string (libstdc++)."""
    n = int(v["_M_string_length"])
    if n == 0:
        return ""
    return v["_M_dataplus"]["_M_p"].string(length=min(n, 4096), errors="replace")


def _cstr(p):
    if int(p) == 0:
        return None
    try:
        return p.string(errors="replace")
    except gdb.MemoryError:
        return "?"


def _vector(v):
    impl = v["_M_impl"]
    p, end = impl["_M_start"], impl["_M_finish"]
    out = []
    while int(p) < int(end) and len(out) < 10000:
        out.append(p.dereference())
        p = p + 1
    return out


def _root():
    try:
        return gdb.parse_and_eval("loupe_debug_root")
    except gdb.error:
        raise gdb.GdbError(
            "no loupe_debug_root in this program: it is not linked with loupe, "
            "or it has no debug information (build it RelWithDebInfo or Debug)")


def _is_core():
    conn = gdb.selected_inferior().connection
    return conn is not None and conn.type == "core"


def _core_file():
    m = re.search(r"Local core dump file:\s*\n\s*`([^']+)'", gdb.execute("info target", to_string=True))
    return m.group(1) if m else None


def _now_ns(root):
    """The process's steady-clock time now (live), or when the core was written."""
    if not _is_core():
        return time.monotonic_ns(), None
    path = _core_file()
    steady, system = int(root["steady_ns"]), int(root["system_ns"])
    if path and os.path.exists(path) and system:
        mtime = os.stat(path).st_mtime_ns
        return steady + (mtime - system), "times as of the core file's modification time"
    return None, "times unknown: the core file's date could not be read"


# ---- the registry as plain values --------------------------------------------

class Task:
    pass


def _task(r, loop_name):
    t = Task()
    t.loop = loop_name
    t.id = int(r["id"])
    t.parent = int(r["parent_id"])
    t.name = _string(r["name"])
    state = int(_atomic(r["state"]))
    t.state = STATES[state] if 0 <= state < len(STATES) else str(state)
    t.since = int(_atomic(r["suspended_since_ns"]))
    t.op = _cstr(_atomic(r["wait_op"]))
    t.obj = _cstr(_atomic(r["wait_object"]))
    t.file = _cstr(_atomic(r["wait_file"]))
    t.line = int(_atomic(r["wait_line"]))
    t.awaiting = int(_atomic(r["awaiting"]))
    site = r["site"]["_M_impl"]
    t.site = None
    if int(site) != 0:
        t.site = "%s:%d" % (_cstr(site["_M_file_name"]), int(site["_M_line"]))
    req = r["request"]
    t.method, t.target, t.route = _string(req["method"]), _string(req["target"]), _string(req["route"])
    t.request_id = _string(req["request_id"])
    t.client_gone = bool(req["client_gone"])
    t.ended = False
    alive = r["request_alive"]["_M_ptr"]
    if not bool(r["serves_request"]) and int(alive) != 0:
        t.ended = not bool(_atomic(alive.dereference()))
    t.what = _string(r["what"])
    return t


def _loops():
    """[(name, impl)] for every loop alive in the process."""
    root = _root()
    if int(root["loops"]) == 0:
        return root, []
    out = []
    for lp in _vector(root["loops"].dereference()):
        impl = _unique_ptr(lp.dereference()["impl_"]).dereference()
        out.append((_string(impl["name"]), impl))
    return root, out


def _tasks(impls):
    tasks = []
    for name, impl in impls:
        r = impl["head"]
        while int(r) != 0 and len(tasks) < 100000:
            tasks.append(_task(r.dereference(), name))
            r = r.dereference()["next"]
    return tasks


def _snapshot():
    """What every command reads: [(name, impl)] of the loops, their live tasks, now (ns) and a note on times."""
    root, impls = _loops()
    now, note = _now_ns(root)
    return impls, _tasks(impls), now, note


# ---- text, as the console writes it ------------------------------------------

def _human(ns):
    if ns is None:
        return "?"
    s = ns / 1e9
    if s < 1e-3:
        return "%dus" % (ns // 1000)
    if s < 1:
        return "%dms" % (ns // 1000000)
    if s < 120:
        return "%.1fs" % s
    return "%dm%02ds" % (s // 60, s % 60)


def _wait(t):
    if not t.op and not t.obj:
        return "-"
    out = t.op or "?"
    if t.obj:
        out += " on " + t.obj
    if t.awaiting and t.obj == "task":  # the field is left as it was when the task waits on other things
        out += " #%d" % t.awaiting
    return out


def _where(t, full):
    if not t.file:
        return "-"
    return "%s:%d" % (t.file if full else os.path.basename(t.file), t.line)


def _request(t):
    if not t.method and not t.target:
        return "-"
    out = "%s %s" % (t.method, t.target)
    if t.route:
        out += " (route %s)" % t.route
    if t.client_gone:
        out += ", client gone"
    if t.ended:
        out += ", request ended"
    return out


def _suspended_for(t, now):
    if t.state != "suspended" or now is None or t.since == 0:
        return None
    return max(0, now - t.since)


class LoupePrefix(gdb.Command):
    """loupe: the loops and tasks of a loupe process, read from its memory (a live process or a core).
loupe tasks [FILTER] | loupe where ID | loupe loops"""

    def __init__(self):
        super().__init__("loupe", gdb.COMMAND_STATUS, gdb.COMPLETE_COMMAND, True)


class LoupeTasks(gdb.Command):
    """loupe tasks [FILTER]: every live task (as the console's ps --all), the longest-suspended first."""

    def __init__(self):
        super().__init__("loupe tasks", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        impls, tasks, now, note = _snapshot()
        f = arg.strip()
        if f:
            tasks = [t for t in tasks if f in t.name or f in t.route or f in t.target]
        tasks.sort(key=lambda t: -(_suspended_for(t, now) or 0))
        fmt = "%6s %-10s %-9s %9s  %-20s %-28s %-24s %s"
        gdb.write(fmt % ("ID", "LOOP", "STATE", "SUSPENDED", "NAME", "WAIT", "LOCATION", "REQUEST") + "\n")
        for t in tasks:
            shown = _request(t) if t.method or not t.what else t.what
            gdb.write(fmt % (t.id, t.loop, t.state, _human(_suspended_for(t, now)) if t.state == "suspended" else "-",
                             t.name, _wait(t), _where(t, False), shown) + "\n")
        gdb.write("%d task(s) on %d loop(s)%s\n" % (len(tasks), len(impls), " (%s)" % note if note else ""))


class LoupeWhere(gdb.Command):
    """loupe where ID: what task ID waits on and where (file:line), its spawn site, request, parents and await chain."""

    def __init__(self):
        super().__init__("loupe where", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        if not arg.strip().isdigit():
            raise gdb.GdbError("usage: loupe where ID")
        want = int(arg)
        _, tasks, now, note = _snapshot()
        by_id = {t.id: t for t in tasks}
        t = by_id.get(want)
        if t is None:
            raise gdb.GdbError("no live task #%d (see loupe tasks)" % want)
        out = "task #%d '%s' on loop '%s': %s\n" % (t.id, t.name, t.loop, t.state)
        if t.state == "suspended":
            out += "  waiting for:  %s\n" % _wait(t)
            out += "  at:           %s\n" % _where(t, True)
            out += "  for:          %s\n" % _human(_suspended_for(t, now))
        out += "  spawned at:   %s\n" % (t.site or "-")
        if t.method:
            out += "  request:      %s request_id=%s\n" % (_request(t), t.request_id)
        if t.what:
            out += "  doing:        %s\n" % t.what
        parents, p = [], t.parent
        while p and len(parents) < 32:
            q = by_id.get(p)
            if q is None:
                parents.append("  #%d (finished, or not in memory)\n" % p)
                break
            parents.append("  #%d '%s' %s (spawned at %s)\n" % (q.id, q.name, q.state, q.site or "-"))
            p = q.parent
        out += "  parents:\n" + "".join(parents) if parents else "  parents:      none\n"
        if t.state == "suspended":
            out += "  await chain (each awaits the next):\n"
            cur, depth = t, 0
            while cur is not None and depth < 32:
                state = _wait(cur) if cur.state == "suspended" else cur.state
                dur = ", for " + _human(_suspended_for(cur, now)) if cur.state == "suspended" else ""
                what = " " + cur.what if cur.what else ""
                out += "  %s#%d '%s'%s: %s at %s%s\n" % ("  " * depth, cur.id, cur.name, what, state,
                                                        _where(cur, True), dur)
                if cur.state != "suspended" or not cur.awaiting or cur.obj != "task":
                    break
                cur, depth = by_id.get(cur.awaiting), depth + 1
        if note:
            out += "  (%s)\n" % note
        gdb.write(out)


def _gdb_thread(impl):
    """gdb's thread for a loop's pthread_t, or None."""
    try:
        return gdb.selected_inferior().thread_from_handle(impl["thread"])
    except (gdb.error, ValueError, TypeError):
        return None


class LoupeLoops(gdb.Command):
    """loupe loops: each loop, its thread, and the callback it runs now (of which task, for how long)."""

    def __init__(self):
        super().__init__("loupe loops", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        impls, tasks, now, note = _snapshot()
        tasks = {t.id: t for t in tasks}
        for name, impl in impls:
            running = bool(_atomic(impl["running"]))
            start = int(_atomic(impl["callback_start_ns"]))
            th = _gdb_thread(impl) if running else None
            thread = "thread %d (LWP %d)" % (th.num, th.ptid[1]) if th is not None else "no thread"
            line = "loop '%s': %s, %s, %d live task(s)" % (name, "running" if running else "not running", thread,
                                                           int(_atomic(impl["live"])))
            if running and start:
                tid = int(_atomic(impl["callback_task"]))
                t = tasks.get(tid)
                who = "task #%d '%s'" % (tid, t.name) if t else ("task #%d" % tid if tid else "no task")
                if t and t.method:
                    who += " serving " + _request(t)
                ran = _human(now - start) if now is not None else "?"
                line += "; running a callback of %s for %s" % (who, ran)
            elif running:
                line += "; between callbacks"
            gdb.write(line + "\n")
        if note:
            gdb.write("(%s)\n" % note)


LoupePrefix()
LoupeTasks()
LoupeWhere()
LoupeLoops()

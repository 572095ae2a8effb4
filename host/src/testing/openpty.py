#!/usr/bin/env python3
"""Test helper: create a raw PTY pair, print the slave path on stdout (like
the native simulator does), then exec the given command with the master as
fd 3 (non-blocking) and the slave kept open as fd 4 (so the master never sees
a hang-up when the host closes its end). Signals reach the command directly."""
import os
import sys
import tty

args = sys.argv[1:]
if not args:
    sys.exit("usage: openpty.py command [args...]")
m, s = os.openpty()
tty.setraw(s)
print(os.ttyname(s), flush=True)
os.set_blocking(m, False)
for fd, want in ((m, 3), (s, 4)):
    if fd != want:
        os.dup2(fd, want)
m2 = 3
os.set_inheritable(3, True)
os.set_inheritable(4, True)
for fd in (m, s):
    if fd not in (3, 4):
        os.close(fd)
os.execvp(args[0], args)

#!/usr/bin/env bash
# Installs Open MPI (Debian's openmpi-bin, which brings libmpi.so.40) when mpirun or the library is missing: what
# data-parallel training (mpirun -np N ./cpt4j train ...) and its test (MpiTrainTest) need. Idempotent: does nothing
# when both are there. Single-process cpt4j never needs it. Needs apt-get and root (or password-less sudo).
set -euo pipefail
have() { command -v mpirun >/dev/null 2>&1 && { ldconfig -p 2>/dev/null | grep -q 'libmpi\.so\.40 '; }; }
if have; then echo "install-mpi: $(mpirun --version 2>/dev/null | head -n 1) already present"; exit 0; fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-mpi: Open MPI (mpirun, libmpi.so.40) is missing and there is no apt-get here; install Open MPI 4 with your package manager" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "install-mpi: Open MPI is missing; run 'apt-get install -y openmpi-bin' as root (this user cannot)" >&2; exit 1
  fi
fi
log="$(mktemp)"
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y --no-install-recommends openmpi-bin >"$log" 2>&1; then
  # a fresh container has no package lists yet
  if ! { $SUDO apt-get update >>"$log" 2>&1 && $SUDO apt-get install -y --no-install-recommends openmpi-bin >>"$log" 2>&1; }; then
    echo "install-mpi: 'apt-get install openmpi-bin' failed (are Debian's package mirrors reachable?): $(tail -n 1 "$log")" >&2
    rm -f "$log"; exit 1
  fi
fi
rm -f "$log"
have || { echo "install-mpi: openmpi-bin is installed but mpirun or libmpi.so.40 is still not found" >&2; exit 1; }
echo "install-mpi: installed $(mpirun --version 2>/dev/null | head -n 1)"

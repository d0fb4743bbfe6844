#!/usr/bin/env bash
# make lab-clean: remove what crashed lab runs left behind, and nothing else.
#
# Only our own naming schemes are touched:
# - namespaces and root-namespace links named sw<N>t<M>-<suffix> (integration/src/lab/names.rs,
#   scripts/demo.sh); processes still running inside such a namespace were started by the lab;
# - vswitchd processes whose --socket lies in a temp dir named swtest-<name>-<owner pid>-<n>
#   (integration/src/lib.rs TempDir, scripts/demo.sh), and only when that owner is no longer
#   their parent (the test or demo that started them died); stopped by PID;
# - those temp dirs, once their owner process is gone.
# A lab test still running loses its namespaces: run this when no lab runs.
# LAB_CLEAN_ONLY=<lab prefix>- limits it to that one lab's namespaces and links (the harness's
# self-test uses it so it never touches a concurrent run).
set -uo pipefail

LAB_RE='^sw[0-9]+t[0-9]+-'
if [ -n "${LAB_CLEAN_ONLY:-}" ]; then
  [[ $LAB_CLEAN_ONLY =~ ^sw[0-9]+t[0-9]+-$ ]] || { echo "lab-clean: LAB_CLEAN_ONLY must look like sw1t2-" >&2; exit 2; }
  LAB_RE="^$LAB_CLEAN_ONLY"
fi
DIR_RE='^swtest-.*-([0-9]+)-[A-Za-z0-9]+$'

alive() { [ -d "/proc/$1" ]; }

# Stop a process by PID: TERM (it removes its socket and detaches its XDP programs), then KILL.
stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 40); do alive "$pid" || return 0; sleep 0.05; done
  kill -KILL "$pid" 2>/dev/null || true
}

# The owner pid encoded in a temp dir's name, or nothing.
owner_of_dir() {
  local base
  base=$(basename -- "$1")
  [[ $base =~ $DIR_RE ]] && echo "${BASH_REMATCH[1]}"
}

# 1. Stale daemons.
for proc in $([ -z "${LAB_CLEAN_ONLY:-}" ] && echo /proc/[0-9]*); do
  pid=${proc#/proc/}
  argv=()
  mapfile -d '' argv <"$proc/cmdline" 2>/dev/null || continue
  [ "${#argv[@]}" -gt 0 ] || continue
  [ "$(basename -- "${argv[0]}")" = vswitchd ] || continue
  sock=""
  for ((i = 1; i < ${#argv[@]}; i++)); do
    case ${argv[i]} in
      --socket) sock=${argv[i + 1]:-} ;;
      --socket=*) sock=${argv[i]#--socket=} ;;
    esac
  done
  [ -n "$sock" ] || continue
  owner=$(owner_of_dir "$(dirname -- "$sock")") || continue
  ppid=$(awk '/^PPid:/ {print $2}' "$proc/status" 2>/dev/null)
  if [ "$ppid" = "$owner" ]; then
    echo "lab-clean: keeping vswitchd $pid: the run that started it ($owner) is alive"
    continue
  fi
  echo "lab-clean: stopping stale vswitchd $pid (socket $sock)"
  stop_pid "$pid"
done

# 2. Namespaces (and what still runs in them).
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "$LAB_RE"); do
  for pid in $(ip netns pids "$ns" 2>/dev/null); do
    echo "lab-clean: stopping process $pid left in namespace $ns"
    stop_pid "$pid"
  done
  echo "lab-clean: deleting namespace $ns"
  ip netns del "$ns" || true
done

# 3. Root-namespace links: veth root ends (their peers and XDP programs go with them), bridges.
for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E "$LAB_RE"); do
  echo "lab-clean: deleting link $link"
  ip link del dev "$link" 2>/dev/null || true
done

# 4. Temp dirs whose owner is gone.
[ -z "${LAB_CLEAN_ONLY:-}" ] || exit 0
tmp=${TMPDIR:-/tmp}
for dir in "$tmp"/swtest-*; do
  [ -d "$dir" ] || continue
  owner=$(owner_of_dir "$dir") || continue
  alive "$owner" && continue
  echo "lab-clean: removing $dir"
  rm -rf -- "$dir"
done
exit 0

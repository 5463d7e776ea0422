#!/bin/sh
# hilbench's POSIX-sh agent, for devices without Python (phones, small boards).
# It needs only a POSIX shell with cat, head, sleep and kill (toybox, busybox, coreutils).
#
#   sh hilbench-agent.sh version
#   sh hilbench-agent.sh probe ROOT [TOOL]
#   sh hilbench-agent.sh run ROOT INTERVAL_S IDLE_S -- TOOL [ARG...]
#
# ROOT is / on a real device (an emulated device's sysfs tree otherwise). `run` dumps the
# cpufreq and power-supply state, starts a sampler of frequencies, temperatures and power
# readings every INTERVAL_S seconds in the background, lets the device idle IDLE_S seconds
# (its idle power), runs the benchmark tool with every output line timestamped, stops the
# sampler and prints everything in sections the host parses:
#   @@hilbench-sh-agent VERSION
#   @@file PATH / file content      (probe and run: files under ROOT, PATH without ROOT)
#   @@tool-sha256 HEX | @@idle-start T | @@tool-start T | @@tool-exit CODE | @@error MESSAGE
#   @@section tool / lines "T LINE"  @@section trace / lines "T PATH VALUE" (T: seconds)
VERSION=2

now() {
    if read -r up _ < /proc/uptime 2>/dev/null; then echo "$up"; else date +%s; fi
}

dump() {  # dump ROOT FILE...: each readable regular file as @@file PATH + its first 64 KiB
    root=$1; shift
    for f in "$@"; do
        if [ -f "$f" ] && [ -r "$f" ]; then
            echo "@@file ${f#"$root"}"
            head -c 65536 "$f" 2>/dev/null
            echo
        fi
    done
}

dump_cpufreq() {
    root=$1
    dump "$root" "$root"/sys/devices/system/cpu/present "$root"/sys/devices/system/cpu/possible \
        "$root"/sys/devices/system/cpu/cpufreq/policy*/* "$root"/sys/devices/system/cpu/cpu[0-9]*/cpufreq/*
}

sampled_files() {
    root=$1
    for f in "$root"/sys/devices/system/cpu/cpufreq/policy*/scaling_cur_freq \
        "$root"/sys/class/devfreq/*/cur_freq "$root"/sys/class/thermal/thermal_zone*/temp \
        "$root"/sys/class/power_supply/*/current_now "$root"/sys/class/power_supply/*/voltage_now \
        "$root"/sys/class/powercap/*/energy_uj "$root"/sys/class/hwmon/hwmon*/power*_input; do
        [ -r "$f" ] && echo "$f"
    done
}

sample_once() {  # sample_once ROOT FILE...: one timestamped reading of each file
    root=$1; shift
    t=$(now)
    for f in "$@"; do
        read -r value < "$f" 2>/dev/null && echo "$t ${f#"$root"} $value"
    done
}

sample() {  # sample ROOT INTERVAL FILE...: until killed
    root=$1; interval=$2; shift 2
    while :; do
        sample_once "$root" "$@"
        sleep "$interval"
    done
}

stamp() {  # each line of standard input, after the time it arrived
    while IFS= read -r line || [ -n "$line" ]; do
        echo "$(now) $line"
    done
}

probe() {
    root=$1; tool=$2
    echo "@@hilbench-sh-agent $VERSION"
    dump_cpufreq "$root"
    dump "$root" "$root"/proc/cpuinfo "$root"/proc/meminfo "$root"/etc/os-release \
        "$root"/proc/sys/kernel/ostype "$root"/sys/class/thermal/thermal_zone*/type \
        "$root"/sys/class/thermal/thermal_zone*/temp \
        "$root"/sys/class/devfreq/*/available_frequencies "$root"/sys/class/devfreq/*/cur_freq \
        "$root"/sys/class/power_supply/*/type "$root"/sys/class/power_supply/*/current_now \
        "$root"/sys/class/power_supply/*/voltage_now "$root"/sys/class/powercap/*/name \
        "$root"/sys/class/powercap/*/energy_uj "$root"/sys/class/hwmon/hwmon*/name
    if command -v getprop >/dev/null 2>&1; then
        echo "@@android $(getprop ro.build.version.release) $(getprop ro.product.model)"
    fi
    for python in python3 python; do
        if command -v "$python" >/dev/null 2>&1; then
            echo "@@python $("$python" -c 'import platform; print(platform.python_version())' 2>/dev/null)"
            break
        fi
    done
    if [ -n "$tool" ]; then
        if [ -x "$tool" ]; then echo "@@tool-present $tool"; else echo "@@tool-missing $tool"; fi
    fi
}

run() {
    root=$1; interval=$2; idle=$3; shift 3
    [ "$1" = "--" ] && shift
    echo "@@hilbench-sh-agent $VERSION"
    if [ ! -x "$1" ]; then
        echo "@@error benchmark tool $1 is missing on the device or not executable"
        return 0
    fi
    if command -v sha256sum >/dev/null 2>&1; then
        echo "@@tool-sha256 $(sha256sum "$1" | cut -d ' ' -f 1)"
    fi
    dump_cpufreq "$root"
    dump "$root" "$root"/sys/class/power_supply/*/type "$root"/sys/class/power_supply/*/status \
        "$root"/sys/class/powercap/*/max_energy_range_uj
    work=${TMPDIR:-/data/local/tmp}
    [ -d "$work" ] && [ -w "$work" ] || work=.
    out="$work/hilbench-tool.$$"
    trace="$work/hilbench-trace.$$"
    status="$work/hilbench-exit.$$"
    # shellcheck disable=SC2046
    sample "$root" "$interval" $(sampled_files "$root") > "$trace" 2>/dev/null &
    sampler=$!
    trap 'kill "$tool" "$sampler" 2>/dev/null; rm -f "$out" "$trace" "$status"; exit 143' TERM INT HUP
    sleep "$interval"
    echo "@@idle-start $(now)"
    sleep "$idle"
    echo "@@tool-start $(now)"
    { "$@" 2>&1; echo "$?" > "$status"; } | stamp > "$out" &
    tool=$!
    wait "$tool"
    code=$(cat "$status" 2>/dev/null || echo 255)
    kill "$sampler" 2>/dev/null
    wait "$sampler" 2>/dev/null
    # shellcheck disable=SC2046
    sample_once "$root" $(sampled_files "$root") >> "$trace" 2>/dev/null  # after the tool
    trap - TERM INT HUP
    echo "@@tool-exit $code"
    echo "@@section tool"
    cat "$out"
    echo
    echo "@@section trace"
    cat "$trace"
    rm -f "$out" "$trace" "$status"
}

command=$1
[ $# -gt 0 ] && shift
case "$command" in
    version) echo "@@hilbench-sh-agent $VERSION" ;;
    probe) probe "${1:-/}" "${2:-}" ;;
    run) run "$@" ;;
    *) echo "usage: hilbench-agent.sh version | probe ROOT [TOOL] | run ROOT INTERVAL_S IDLE_S -- TOOL [ARG...]" >&2; exit 2 ;;
esac

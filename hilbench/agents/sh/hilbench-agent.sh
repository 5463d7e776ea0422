#!/bin/sh
# hilbench's POSIX-sh agent, for devices without Python (phones, small boards).
# It needs only a POSIX shell with cat, head, sleep and kill (toybox, busybox, coreutils).
#
#   sh hilbench-agent.sh version
#   sh hilbench-agent.sh probe ROOT [TOOL]
#   sh hilbench-agent.sh dvfs ROOT
#   sh hilbench-agent.sh run ROOT INTERVAL_S IDLE_S [--pin NAME DIR MIN_FILE MAX_FILE VALUE]...
#                            [--power-command N WORD_1 ... WORD_N] -- TOOL [ARG...]
#
# ROOT is / on a real device (an emulated device's sysfs tree otherwise). `dvfs` dumps the
# cpufreq and devfreq state, in which the host finds each domain's folder. `run` pins each
# domain given with --pin (DIR/MIN_FILE = DIR/MAX_FILE = VALUE, written in the order that
# keeps min <= max; where a write fails the domain is left as it was, and said so), dumps
# the cpufreq, devfreq and power-supply state, starts a sampler of frequencies,
# temperatures and power readings every INTERVAL_S seconds in the background (and one that
# runs the power command, N words, which prints watts), lets the device idle IDLE_S seconds
# (its idle power), runs the benchmark tool with every output line timestamped, puts the
# limits it found back (also when TERM, INT or HUP stops it), stops the samplers and prints
# everything in sections the host parses:
#   @@hilbench-sh-agent VERSION
#   @@file PATH / file content      (probe, dvfs and run: files under ROOT, PATH without ROOT)
#   @@tool-sha256 HEX | @@idle-start T | @@tool-start T | @@tool-exit CODE | @@error MESSAGE
#   @@dvfs-pinned NAME VALUE | @@dvfs-not-pinned NAME WHY | @@dvfs-not-restored NAME WHY
#   @@section tool / lines "T LINE"
#   @@section trace / lines "T PATH VALUE" and "T external OUTPUT" (T: seconds)
VERSION=3

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

dump_dvfs() {  # cpufreq, and the devfreq files that give a device's levels and limits
    root=$1
    dump_cpufreq "$root"
    dump "$root" "$root"/sys/class/devfreq/*/available_frequencies \
        "$root"/sys/class/devfreq/*/cur_freq "$root"/sys/class/devfreq/*/governor \
        "$root"/sys/class/devfreq/*/min_freq "$root"/sys/class/devfreq/*/max_freq
}

sampled_files() {
    root=$1
    for f in "$root"/sys/devices/system/cpu/cpufreq/policy*/scaling_cur_freq \
        "$root"/sys/class/devfreq/*/cur_freq "$root"/sys/class/thermal/thermal_zone*/temp \
        "$root"/sys/class/power_supply/*/current_now "$root"/sys/class/power_supply/*/voltage_now \
        "$root"/sys/class/powercap/*/energy_uj "$root"/sys/class/hwmon/hwmon*/power*_input; do
        [ -r "$f" ] && printf '%s\n' "$f"
    done
}

with_sampled_files() {  # with_sampled_files ROOT COMMAND ARG...: runs COMMAND ARG... FILE...,
    # each sampled file one argument (split at newlines only, never globbed: ROOT may hold
    # spaces, quotes or '*')
    w_files=$(sampled_files "$1"); shift
    w_ifs=$IFS
    IFS='
'
    set -f
    # shellcheck disable=SC2086
    set -- "$@" $w_files
    set +f
    IFS=$w_ifs
    "$@"
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

power_once() {  # power_once WORD...: one run of the power command, its output on one line
    p_out=$("$@" 2>/dev/null < /dev/null) || return 0
    p_t=$(now)
    p_line=
    while IFS= read -r p_part || [ -n "$p_part" ]; do
        [ -n "$p_part" ] && p_line="$p_line $p_part"
    done <<EOF
$p_out
EOF
    [ -n "$p_line" ] && echo "$p_t external$p_line"
    return 0
}

power_sample() {  # power_sample INTERVAL STOP N WORD...: the first N words are the command;
    # until the file STOP appears (a reading taken after that is the last) or it is killed
    p_interval=$1; p_stop=$2; p_count=$3; shift 3
    p_rest=$(($# - p_count)); p_i=0
    while [ "$p_i" -lt "$p_count" ]; do  # the command's words to the end, then the rest off
        set -- "$@" "$1"; shift; p_i=$((p_i + 1))
    done
    shift "$p_rest"
    while :; do
        power_once "$@"
        [ -e "$p_stop" ] && return 0
        sleep "$p_interval"
    done
}

finish_power() {  # a last reading after the tool, if the command answers within 3 s
    [ -n "$power" ] || return 0
    : > "$power_stop"
    f_i=0
    while kill -0 "$power" 2>/dev/null && [ "$f_i" -lt 30 ]; do
        sleep 0.1; f_i=$((f_i + 1))
    done
    stop_pid "$power"
    wait "$power" 2>/dev/null
    power=
}

value_of() {  # value_of FILE: its first line (cat reads it at once, as sysfs and procfs like)
    v_text=$(cat "$1" 2>/dev/null) || return 1
    [ -n "$v_text" ] || return 1
    echo "${v_text%%
*}"
}

write_value() {  # write_value FILE VALUE: prints nothing if it was written, else why not
    w_why=$( { echo "$2" > "$1"; } 2>&1 ) && return 0
    w_why=${w_why##*: }
    echo "${w_why:-write refused}"
    return 1
}

write_limits() {  # write_limits MIN_PATH MAX_PATH LOW HIGH RAISING: min <= max at every step
    if [ "$5" = yes ]; then
        why=$(write_value "$2" "$4") && why=$(write_value "$1" "$3")
    else
        why=$(write_value "$1" "$3") && why=$(write_value "$2" "$4")
    fi
}

put_back() {  # put_back MIN_FILE MAX_FILE LOW HIGH DIR: the limits found before the pin,
    # both tried even if one fails (the other may be all that was written)
    b_max=$(value_of "$5/$2") || b_max=0
    if [ "$4" -gt "$b_max" ] 2>/dev/null; then
        b_first=$(write_value "$5/$2" "$4"); b_second=$(write_value "$5/$1" "$3")
    else
        b_first=$(write_value "$5/$1" "$3"); b_second=$(write_value "$5/$2" "$4")
    fi
    why=${b_first:-$b_second}
    [ -z "$why" ]
}

restore_list() {  # restore_list LINES: each "NAME MIN_FILE MAX_FILE LOW HIGH DIR" put back
    while read -r r_name r_min r_max r_low r_high r_dir; do
        [ -n "$r_name" ] || continue
        put_back "$r_min" "$r_max" "$r_low" "$r_high" "$r_dir" ||
            echo "@@dvfs-not-restored $r_name $why"
    done <<EOF
$1
EOF
}

restore_pins() {  # every pinned domain back as it was, and a pin a signal cut short
    restore_list "$pending
$restore"
    pending=; restore=
}

pin() {  # pin NAME DIR MIN_FILE MAX_FILE VALUE: MIN_FILE = MAX_FILE = VALUE, or why not
    if ! n_low=$(value_of "$2/$3") || ! n_high=$(value_of "$2/$4"); then
        echo "@@dvfs-not-pinned $1 cannot read $3 and $4"
        return 0
    fi
    n_raising=no
    [ "$5" -gt "$n_high" ] 2>/dev/null && n_raising=yes
    pending="$1 $3 $4 $n_low $n_high $2"  # put back from here on, even if a signal comes now
    if write_limits "$2/$3" "$2/$4" "$5" "$5" "$n_raising"; then
        n_now_low=$(value_of "$2/$3"); n_now_high=$(value_of "$2/$4")
        if [ "$n_now_low" = "$5" ] && [ "$n_now_high" = "$5" ]; then
            restore="$pending
$restore"
            pending=
            echo "@@dvfs-pinned $1 $5"
            return 0
        fi
        why="the kernel kept $3 $n_now_low and $4 $n_now_high"
    fi
    n_why=$why
    restore_list "$pending" > /dev/null  # what was written before the failure goes back
    pending=
    echo "@@dvfs-not-pinned $1 $n_why"
}

pin_all() {  # each line of $pins: "NAME MIN_FILE MAX_FILE VALUE DIR"
    while read -r a_name a_min a_max a_value a_dir; do
        [ -n "$a_name" ] && pin "$a_name" "$a_dir" "$a_min" "$a_max" "$a_value"
    done <<EOF
$pins
EOF
}

stop_pid() {
    [ -n "$1" ] && kill "$1" 2>/dev/null
    return 0
}

stop_all() {  # the tool and the samplers stopped, the limits back, the work files away
    tool_pid=$(cat "$pidfile" 2>/dev/null) && stop_pid "$tool_pid"
    stop_pid "$tool"; stop_pid "$sampler"; stop_pid "$power"
    restore_pins
    rm -f "$out" "$trace" "$status" "$power_trace" "$power_stop" "$pidfile"
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
        "$root"/sys/class/power_supply/*/energy_full_design \
        "$root"/sys/class/power_supply/*/charge_full_design \
        "$root"/sys/class/power_supply/*/voltage_min_design \
        "$root"/sys/class/power_supply/*/voltage_max_design \
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

run_options() {  # run_options ARG...: the --pin lines into $pins, the power command's length
    pins=; power_words=0; consumed=0
    while [ "$1" = "--pin" ]; do
        [ $# -ge 6 ] || { echo "--pin needs NAME DIR MIN_FILE MAX_FILE VALUE"; return 1; }
        pins="$pins$2 $4 $5 $6 $3
"
        shift 6; consumed=$((consumed + 6))
    done
    if [ "$1" = "--power-command" ]; then
        case "$2" in ''|*[!0-9]*) echo "--power-command needs N and N words"; return 1 ;; esac
        [ $(($# - 2)) -ge "$2" ] || { echo "--power-command needs N and N words"; return 1; }
        power_words=$2; consumed=$((consumed + 2))
    fi
}

run() {
    echo "@@hilbench-sh-agent $VERSION"
    [ $# -ge 3 ] || { echo "@@error run needs ROOT INTERVAL_S IDLE_S"; return 0; }
    root=$1; interval=$2; idle=$3; shift 3
    problem=$(run_options "$@") || { echo "@@error $problem"; return 0; }
    run_options "$@"
    shift "$consumed"
    work=${TMPDIR:-/data/local/tmp}  # else the folder hilbench put this script in
    [ -d "$work" ] && [ -w "$work" ] || work=$agent_dir
    [ -d "$work" ] && [ -w "$work" ] || work=.
    out="$work/hilbench-tool.$$"
    trace="$work/hilbench-trace.$$"
    status="$work/hilbench-exit.$$"
    power_trace="$work/hilbench-power.$$"
    pidfile="$work/hilbench-pid.$$"
    power_stop="$work/hilbench-power-stop.$$"
    tool=; sampler=; power=; pending=; restore=
    rm -f "$pidfile" "$power_stop"
    : > "$power_trace"
    trap 'stop_all; exit 143' TERM INT HUP
    if [ "$power_words" -gt 0 ]; then  # "$@" starts with the command's words here
        power_sample "$interval" "$power_stop" "$power_words" "$@" > "$power_trace" 2>/dev/null &
        power=$!
        shift "$power_words"
    fi
    [ "$1" = "--" ] && shift
    if [ $# -eq 0 ] || [ ! -x "$1" ]; then
        echo "@@error benchmark tool ${1:-(none)} is missing on the device or not executable"
        stop_all
        trap - TERM INT HUP
        return 0
    fi
    if command -v sha256sum >/dev/null 2>&1; then
        echo "@@tool-sha256 $(sha256sum "$1" | cut -d ' ' -f 1)"
    fi
    pin_all
    dump_dvfs "$root"
    dump "$root" "$root"/sys/class/power_supply/*/type "$root"/sys/class/power_supply/*/status \
        "$root"/sys/class/powercap/*/max_energy_range_uj
    with_sampled_files "$root" sample "$root" "$interval" > "$trace" 2>/dev/null &
    sampler=$!
    sleep "$interval"
    echo "@@idle-start $(now)"
    sleep "$idle"
    echo "@@tool-start $(now)"
    { "$@" 2>&1 & echo "$!" > "$pidfile"; wait "$!"; echo "$?" > "$status"; } | stamp > "$out" &
    tool=$!
    wait "$tool"
    code=$(cat "$status" 2>/dev/null || echo 255)
    restore_pins
    stop_pid "$sampler"
    wait "$sampler" 2>/dev/null
    with_sampled_files "$root" sample_once "$root" >> "$trace" 2>/dev/null  # after the tool
    finish_power
    trap - TERM INT HUP
    echo "@@tool-exit $code"
    echo "@@section tool"
    cat "$out"
    echo
    echo "@@section trace"
    cat "$trace" "$power_trace"
    rm -f "$out" "$trace" "$status" "$power_trace" "$power_stop" "$pidfile"
}

usage() {
    echo "usage: hilbench-agent.sh version | probe ROOT [TOOL] | dvfs ROOT | run ROOT INTERVAL_S IDLE_S [--pin NAME DIR MIN_FILE MAX_FILE VALUE]... [--power-command N WORD...] -- TOOL [ARG...]" >&2
}

agent_dir=.
case "$0" in */*) agent_dir=${0%/*} ;; esac
command=$1
[ $# -gt 0 ] && shift
case "$command" in
    version) echo "@@hilbench-sh-agent $VERSION" ;;
    probe) probe "${1:-/}" "${2:-}" ;;
    dvfs) echo "@@hilbench-sh-agent $VERSION"; dump_dvfs "${1:-/}" ;;
    run) run "$@" ;;
    *) usage; exit 2 ;;
esac

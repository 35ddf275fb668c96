# bash completion for lcmcoord(1): subcommands, each subcommand's options, and the values
# of options that take a fixed set or a file. The options are read from the installed
# program's own `lcmcoord SUBCOMMAND --help` (once per shell), so the completion always
# matches the program it completes; a fixed list stands in when the program is missing.
# Installed as share/bash-completion/completions/lcmcoord.

_lcmcoord_options()
{
    local sub=$1 var="_lcmcoord_opts_${1}"
    if [[ -z ${!var-} ]]; then
        local help
        help=$("${_lcmcoord_prog:-lcmcoord}" "$sub" --help 2>/dev/null)
        if [[ -n $help ]]; then
            printf -v "$var" '%s' "$(grep -oE -- '(^|[ ,[(])--?[a-zA-Z][a-zA-Z0-9-]*' <<<"$help" |
                sed -E 's/^[ ,[(]//' | sort -u | tr '\n' ' ')"
        else
            case $sub in
            run) printf -v "$var" '%s' "-v -vv --verbose --record --cacert --capath --cert --key --config --log-format --print-config --any-params --sandbox --script-timeout --memory-limit --help -h" ;;
            coordinate) printf -v "$var" '%s' "--endpoint --action --request --input --instance --op-occ --operation --auth --version --timeout -v -vv --verbose --cacert --capath --cert --key --config --log-format --print-config --help -h" ;;
            repl) printf -v "$var" '%s' "--endpoint --auth --version --timeout --cacert --capath --cert --key --config --print-config --help -h" ;;
            check) printf -v "$var" '%s' "-v -vv --verbose --offline --timeout --script-timeout --cacert --capath --cert --key --config --log-format --print-config --help -h" ;;
            params) printf -v "$var" '%s' "--vdu --new --old --vnfc --operation --ssh-ip --vnfm --help -h" ;;
            em) printf -v "$var" '%s' "--listen --mode --polls --rejects --result --retry-after --location --delay --basic --oauth2 --token-ttl --tls-cert --tls-key --client-ca --body-limit --journal-max --threads --scenario --chaos --base-url --max-connections --max-per-client --idle-timeout --header-timeout --min-body-rate --quiet --log-format --help" ;;
            serve) printf -v "$var" '%s' "--hooks --listen --store --instance-id --sync-budget --max-decisions --exclusive --cancel-grace --shutdown-grace --lease-ttl --retention --retry-after --tls-cert --tls-key --client-ca --base-url --threads --max-connections --max-per-client --idle-timeout --header-timeout --body-limit --users-file --jwks-file --jwt-issuer --jwt-audience --jwt-leeway --introspect-url --introspect-credentials-file --introspect-cacert --introspect-timeout --introspect-cache-ttl --require-cert-binding --hash-password --quiet --log-format --config" ;;
            esac
        fi
        # Taken by the program before the simulator's own options, so maybe not in em's help.
        if [[ $sub == em && ${!var} != *--log-format* ]]; then
            printf -v "$var" '%s' "${!var} --log-format"
        fi
    fi
    printf '%s' "${!var-}"
}

# The names `lcmcoord em --chaos` takes, from the program's own list (once per shell).
_lcmcoord_chaos_names()
{
    if [[ -z ${_lcmcoord_chaos-} ]]; then
        _lcmcoord_chaos=$("${_lcmcoord_prog:-lcmcoord}" em --chaos list 2>/dev/null |
            awk '$1 ~ /^[a-z0-9-]+$/ { print $1 }' | tr '\n' ' ')
    fi
    printf '%s' "${_lcmcoord_chaos-}"
}

_lcmcoord()
{
    local cur prev sub i
    COMPREPLY=()
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]:-}
    _lcmcoord_prog=${COMP_WORDS[0]:-lcmcoord}
    sub=
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
        run | coordinate | repl | check | params | em | serve) sub=${COMP_WORDS[i]}; break ;;
        esac
    done
    if [[ -z $sub && $COMP_CWORD -eq 2 && ${COMP_WORDS[1]} == help ]]; then
        COMPREPLY=($(compgen -W "run coordinate repl check params em serve" -- "$cur"))
        return 0
    fi
    if [[ -z $sub ]]; then
        COMPREPLY=($(compgen -W "run coordinate repl check params em serve help --help --version" -- "$cur"))
        return 0
    fi
    case $prev in
    --log-format) COMPREPLY=($(compgen -W "text json" -- "$cur")); return 0 ;;
    --mode) COMPREPLY=($(compgen -W "sync async" -- "$cur")); return 0 ;;
    --exclusive) COMPREPLY=($(compgen -W "vnfc instance none" -- "$cur")); return 0 ;;
    --result) COMPREPLY=($(compgen -W "CONTINUE ABORT CANCELLED" -- "$cur")); return 0 ;;
    --location) COMPREPLY=($(compgen -W "absolute relative none" -- "$cur")); return 0 ;;
    --operation)
        COMPREPLY=($(compgen -W "INSTANTIATE SCALE SCALE_TO_LEVEL CHANGE_FLAVOUR TERMINATE HEAL OPERATE CHANGE_EXT_CONN MODIFY_INFO CREATE_SNAPSHOT REVERT_TO_SNAPSHOT CHANGE_VNFPKG" -- "$cur"))
        return 0 ;;
    --chaos) COMPREPLY=($(compgen -W "$(_lcmcoord_chaos_names)" -- "$cur")); return 0 ;;
    --capath) COMPREPLY=($(compgen -d -- "$cur")); return 0 ;;
    --record | --cacert | --cert | --key | --config | --auth | --request | --tls-cert | \
        --tls-key | --client-ca | --scenario | --hooks | --users-file | --jwks-file | \
        --introspect-credentials-file | --introspect-cacert)
        COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;
    --endpoint | --action | --input | --instance | --op-occ | --version | --timeout | \
        --listen | --polls | --rejects | --retry-after | --delay | --basic | --oauth2 | \
        --token-ttl | --body-limit | --journal-max | --threads | --base-url | \
        --max-connections | --max-per-client | --idle-timeout | --header-timeout | --min-body-rate | \
        --script-timeout | --memory-limit | --vdu | --vnfc | --ssh-ip | --vnfm | --store | \
        --instance-id | --sync-budget | --max-decisions | --cancel-grace | --shutdown-grace | \
        --lease-ttl | --retention | --jwt-issuer | --jwt-audience | --jwt-leeway | \
        --introspect-url | --introspect-timeout | --introspect-cache-ttl | --hash-password)
        return 0 ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_lcmcoord_options "$sub")" -- "$cur"))
    elif [[ $sub == run || $sub == check ]]; then
        # The script: Lua files and directories on the way to them.
        COMPREPLY=($(compgen -f -X '!*.lua' -- "$cur") $(compgen -d -- "$cur"))
    elif [[ $sub == params ]]; then
        # The package's additionalParams: JSON files and directories on the way to them.
        COMPREPLY=($(compgen -f -X '!*.json' -- "$cur") $(compgen -d -- "$cur"))
    fi
    return 0
}

complete -o filenames -F _lcmcoord lcmcoord

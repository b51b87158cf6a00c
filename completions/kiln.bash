# bash completion for kiln
_kiln() {
    local cur prev cmd
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    local commands="build builder check export history image images import info inspect load
        login logout pull push rmi run save system tag"
    local globals="--root --userns --storage-driver --debug --help --version"
    cmd=
    local w
    for w in "${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
        case $w in -*) ;; *) cmd=$w; break ;; esac
    done
    case $prev in
        --userns) COMPREPLY=($(compgen -W "auto range single" -- "$cur")); return ;;
        --storage-driver) COMPREPLY=($(compgen -W "auto overlay fuse-overlayfs copy" -- "$cur")); return ;;
        --progress) COMPREPLY=($(compgen -W "auto tty plain quiet" -- "$cur")); return ;;
        --network) COMPREPLY=($(compgen -W "default none host" -- "$cur")); return ;;
        --compression) COMPREPLY=($(compgen -W "gzip zstd none" -- "$cur")); return ;;
        -f|--file|--iidfile|--root|--env-file|-o|--output|--authfile|--cert-dir|-i|--input)
            COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac
    if [ -z "$cmd" ]; then
        COMPREPLY=($(compgen -W "$commands $globals" -- "$cur"))
        return
    fi
    local flags=
    case $cmd in
        build) flags="-t --tag -f --file --build-arg --target --no-cache --pull --label --iidfile
            -q --quiet --secret --ssh --progress -o --output --build-context --timestamp
            --network --add-host --shm-size --ulimit --compression --compression-level
            --platform --security-opt --cache-from --cache-to" ;;
        run) flags="--rm -i --interactive -t --tty -e --env --env-file -v --volume -w --workdir
            -u --user --network --entrypoint --hostname --security-opt" ;;
        images) flags="-a --all -q --quiet --digests --no-trunc --filter --format" ;;
        check) flags="-f --file --target --build-arg --platform --print-ast" ;;
        push|pull|login|logout) flags="--creds --authfile --tls-verify --cert-dir --platform -q" ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags $globals" -- "$cur"))
    else
        case $cmd in
            run|inspect|history|rmi|tag|push|save|export)
                COMPREPLY=($(compgen -W "$(kiln images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null)" -- "$cur")) ;;
            *) COMPREPLY=($(compgen -f -- "$cur")) ;;
        esac
    fi
}
complete -F _kiln kiln

# bash completion for kto: `source scripts/kto-completion.bash` (or copy it to
# /etc/bash_completion.d/kto). Candidates come from kto's own parser: `kto complete`.
_kto_complete() {
    local IFS=$'\n' c
    local -a found
    found=($("${COMP_WORDS[0]}" complete --cword "$COMP_CWORD" -- "${COMP_WORDS[@]}" 2>/dev/null))
    COMPREPLY=()
    for c in "${found[@]}"; do
        if [[ $c == __files__ ]]; then
            COMPREPLY+=($(compgen -f -- "${COMP_WORDS[COMP_CWORD]}"))
            compopt -o filenames 2>/dev/null
        else
            COMPREPLY+=("$c")
        fi
    done
}
complete -F _kto_complete kto

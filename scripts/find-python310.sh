#!/usr/bin/env sh
# Print the path of a Python 3.10 interpreter (Rasa 3.6 supports 3.8-3.10; we use 3.10):
# python3.10 on PATH first, then pyenv's versions. Exit 1 with advice when there is none.
for candidate in "$(command -v python3.10 2>/dev/null)" \
    "$(pyenv root 2>/dev/null)"/versions/3.10*/bin/python3.10 \
    "$HOME"/.pyenv/versions/3.10*/bin/python3.10 \
    /usr/local/bin/python3.10 /usr/bin/python3.10; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" -c 'import sys, venv; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then
        echo "$candidate"
        exit 0
    fi
done
echo "Python 3.10 not found. Install it (e.g. 'pyenv install 3.10' or 'apt-get install python3.10 python3.10-venv') and run make again." >&2
exit 1

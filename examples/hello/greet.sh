#!/bin/sh
# Prints who runs it and what the build recorded.
echo "$GREETING!"
echo "running as uid $(id -u) in $(pwd)"
cat /app/data/build-info

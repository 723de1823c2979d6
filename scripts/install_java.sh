#!/bin/sh
# Install a Java runtime for the Spark engine (pyspark 4 needs Java 17+), only when `java` is absent.
# Debian/Ubuntu (CI images): run as root, or with sudo available. Elsewhere it says what to install.
set -eu

if command -v java >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_java.sh: no java and no apt-get here; install a Java 17+ runtime (e.g. OpenJDK 17) or set JAVA_HOME" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
else
    SUDO="sudo"
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openjdk-17-jre-headless
java -version

# Sourced by every script: finds the repo (SSI_HOME), the JDK to run on (Temurin 25) and builds the
# project on first use. Keep it POSIX sh: ssi-run's start latency includes this file.
if [ -z "${SSI_HOME:-}" ]; then
    SSI_HOME=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
    [ -f "$SSI_HOME/pom.xml" ] || SSI_HOME=$(dirname "$SSI_HOME")
fi
export SSI_HOME
if [ -z "${SSI_JAVA_HOME:-}" ]; then
    if [ -x /usr/lib/jvm/temurin-25-jdk-amd64/bin/java ]; then
        SSI_JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64
    else
        SSI_JAVA_HOME=${JAVA_HOME:-}
    fi
fi
export SSI_JAVA_HOME

ssi_build_if_needed() {
    if [ ! -x "$SSI_HOME/native/target/bin/ssi-run" ] || [ ! -f "$SSI_HOME/launcher/target/launcher.jar" ] \
       || [ ! -f "$SSI_HOME/supervisor/target/supervisor.jar" ]; then
        echo "ssi: first use, building the project (mvn package, about a minute)..." >&2
        (cd "$SSI_HOME" && JAVA_HOME="$SSI_JAVA_HOME" mvn -B -q -DskipTests package >&2) || {
            echo "ssi: build failed; run 'mvn package' in $SSI_HOME to see why" >&2
            exit 1
        }
    fi
}

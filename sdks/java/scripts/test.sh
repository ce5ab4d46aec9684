#!/usr/bin/env bash
# Every check of the Java SDK: installs what it needs from Debian when missing (a JDK, Maven, and the Java
# packages whose Maven repository, /usr/share/maven-repo, is the build's only one: Maven Central is not
# reachable), then `mvn -o package`: compile with -Werror, the JUnit 5 suite against real IdentSphere
# servers, the jar, the sources jar and the javadoc jar (warnings fail it). The tests start their own
# IdentSphere from the binary this script builds in the dev profile (CARGO_TARGET_DIR, default
# ~/.cache/identsphere/target, as CI uses), or $IDENTSPHERE_BIN. Arguments go to Maven
# (./scripts/test.sh -Dtest=VerifierTest).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
. ../../scripts/sdk-common.sh
step() { echo "== sdks/java: $* ($(( $(date +%s) - started ))s)" >&2; }

step "Debian packages"
# The build's plugins at the versions pom.xml pins, JUnit 5, the Servlet API, and Tomcat for the filter's test.
packages=(openjdk-17-jdk-headless maven junit5 libjakarta-servlet-api-java libtomcat10-java
  libmaven-compiler-plugin-java libmaven-resources-plugin-java libmaven-jar-plugin-java libsurefire-java
  libmaven-source-plugin-java libmaven-javadoc-plugin-java)
debian_packages java "${packages[@]}"

identsphere_binary

step "mvn -o package: compile, tests, jars, javadoc"
mvn -o -B -ntp package "$@"

step "done"

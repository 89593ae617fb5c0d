# Sourced by ./cpt4j and .ci/run: sets JAVA_HOME to a JDK >= 25 or exits with one clear line.
# Order: $JAVA_HOME, java on PATH, then the usual install locations.
cpt4j_java_major() {  # prints the major version of the java binary $1, or nothing
  "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = \([0-9]*\).*/\1/p' | head -n1
}
cpt4j_find_jdk() {
  local c v
  for c in ${JAVA_HOME:+"$JAVA_HOME"} \
           "$(dirname "$(dirname "$(readlink -f "$(command -v java 2>/dev/null || echo /nonexistent)")")")" \
           /usr/lib/jvm/* /opt/java/* /opt/jdk* /usr/local/lib/jvm/* "$HOME"/.sdkman/candidates/java/* "$HOME"/.jdks/*; do
    [ -x "$c/bin/java" ] && [ -x "$c/bin/javac" ] || continue
    v=$(cpt4j_java_major "$c/bin/java")
    if [ -n "$v" ] && [ "$v" -ge 25 ]; then echo "$c"; return 0; fi
  done
  return 1
}
if ! CPT4J_JDK=$(cpt4j_find_jdk); then
  echo "cpt4j: no JDK 25 or newer found (looked at JAVA_HOME, PATH, /usr/lib/jvm, /opt/java); install one (e.g. Temurin 25) and set JAVA_HOME to it" >&2
  exit 1
fi
export JAVA_HOME="$CPT4J_JDK"
export PATH="$JAVA_HOME/bin:$PATH"
export MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow"

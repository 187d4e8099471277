package dev.sagejit.spec;

/** Which pass of attention a kernel computes. */
public enum Direction {
    FWD, BWD;

    public String id() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }
}

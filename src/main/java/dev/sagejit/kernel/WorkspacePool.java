package dev.sagejit.kernel;

import dev.sagejit.runtime.Device;
import dev.sagejit.runtime.Event;
import dev.sagejit.runtime.Stream;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

/**
 * Scratch memory shared by calls from many threads and streams. A call leases one workspace while it
 * enqueues its kernels; closing the lease records an event on the call's stream, so the GPU work
 * that reads the workspace is known. A later lease takes, in order of preference: the idle workspace
 * last used on the same stream (stream order makes reuse safe; the latest, so a call can read what
 * the previous call on its stream left there), one whose work has finished, a new
 * one (up to {@code maxWorkspaces}), or the least recently used idle one with the new stream made to
 * wait for its last use on the GPU. The host blocks only while every workspace is being enqueued into.
 *
 * @param <T> the workspace type; it is closed when the pool is
 */
final class WorkspacePool<T extends AutoCloseable> implements AutoCloseable {
    private final Device device;
    private final Supplier<T> factory;
    private final int maxWorkspaces;
    private final List<Slot<T>> slots = new ArrayList<>();
    private long uses;
    private boolean closed;

    private static final class Slot<T> {
        final T value;
        final Event lastUse;
        Stream stream;
        long lastUsed;
        boolean leased;

        Slot(T value, Event lastUse) {
            this.value = value;
            this.lastUse = lastUse;
        }
    }

    public WorkspacePool(Device device, int maxWorkspaces, Supplier<T> factory) {
        if (maxWorkspaces < 1) {
            throw new IllegalArgumentException("maxWorkspaces must be >= 1, got " + maxWorkspaces);
        }
        this.device = device;
        this.maxWorkspaces = maxWorkspaces;
        this.factory = factory;
    }

    /** A workspace of this pool held by one call until {@link #close()}. */
    public final class Lease implements AutoCloseable {
        private final Slot<T> slot;
        private final Stream stream;
        private boolean released;

        private Lease(Slot<T> slot, Stream stream) {
            this.slot = slot;
            this.stream = stream;
        }

        public T workspace() {
            return slot.value;
        }

        /** Records the end of this call's work on its stream and returns the workspace to the pool. */
        @Override
        public void close() {
            if (released) {
                return;
            }
            released = true;
            try {
                slot.lastUse.record(stream);
            } finally {
                release(slot, stream);
            }
        }
    }

    /** Leases a workspace for work enqueued on {@code stream}, waiting only while all are being enqueued into. */
    public Lease lease(Stream stream) {
        Slot<T> slot;
        boolean mustWait = false;
        synchronized (this) {
            while (true) {
                if (closed) {
                    throw new IllegalStateException("workspace pool closed");
                }
                slot = pick(stream);
                if (slot != null) {
                    break;
                }
                if (slots.size() < maxWorkspaces) {
                    slot = new Slot<>(factory.get(), new Event(device));
                    slots.add(slot);
                    break;
                }
                Slot<T> lru = leastRecentlyUsedIdle();
                if (lru != null) {
                    slot = lru;
                    mustWait = true;
                    break;
                }
                try {
                    wait();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("interrupted while waiting for a workspace", e);
                }
            }
            slot.leased = true;
        }
        if (mustWait) {
            slot.lastUse.makeWait(stream);
        }
        return new Lease(slot, stream);
    }

    /** Workspaces created so far (at most {@code maxWorkspaces}). */
    public synchronized int size() {
        return slots.size();
    }

    private Slot<T> pick(Stream stream) {
        Slot<T> sameStream = null; // the latest one, so a call that reads what the previous left finds it
        for (Slot<T> s : slots) {
            if (!s.leased && s.stream != null && s.stream.sameQueue(stream)
                    && (sameStream == null || s.lastUsed > sameStream.lastUsed)) {
                sameStream = s;
            }
        }
        if (sameStream != null) {
            return sameStream;
        }
        for (Slot<T> s : slots) {
            if (!s.leased && s.lastUse.isComplete()) {
                return s;
            }
        }
        return null;
    }

    private Slot<T> leastRecentlyUsedIdle() {
        Slot<T> best = null;
        for (Slot<T> s : slots) {
            if (!s.leased && (best == null || s.lastUsed < best.lastUsed)) {
                best = s;
            }
        }
        return best;
    }

    private synchronized void release(Slot<T> slot, Stream stream) {
        slot.leased = false;
        slot.stream = stream;
        slot.lastUsed = ++uses;
        notifyAll();
    }

    /** Waits for the GPU work of every workspace, then closes them. */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (Slot<T> s : slots) {
            try {
                s.lastUse.synchronize();
                s.value.close();
            } catch (Exception e) {
                throw new IllegalStateException("closing a workspace: " + e.getMessage(), e);
            } finally {
                s.lastUse.close();
            }
        }
        slots.clear();
        notifyAll();
    }
}

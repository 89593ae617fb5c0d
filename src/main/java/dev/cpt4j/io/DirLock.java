package dev.cpt4j.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * An exclusive OS lock ({@code fcntl}/{@code LockFileEx} through {@link FileChannel#tryLock()}) on a file inside the
 * folder it guards, held until {@link #close()}. The OS drops it when the process dies, {@code kill -9} included, so
 * a stale lock never blocks the next run; the file itself stays (deleting it on release would let two processes
 * lock two different files of the same name). Not a lock between threads of one JVM: a second attempt in the same
 * JVM is refused like one from another process.
 */
public final class DirLock implements AutoCloseable {
    private final FileChannel channel;

    private DirLock(FileChannel channel) {
        this.channel = channel;
    }

    /**
     * Locks {@code file} (created if missing), or returns null when another process or this JVM holds it. With
     * {@code owner} not null, the file's content is replaced by it once locked (who holds the lock, for the message
     * of the one refused).
     */
    public static DirLock tryAcquire(Path file, String owner) throws IOException {
        FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ, StandardOpenOption.WRITE);
        FileLock lock;
        try {
            lock = ch.tryLock();
        } catch (OverlappingFileLockException e) {
            lock = null;
        } catch (IOException | RuntimeException e) {
            ch.close();
            throw e;
        }
        if (lock == null) {
            ch.close();
            return null;
        }
        if (owner != null) {
            ch.truncate(0);
            ch.write(ByteBuffer.wrap(owner.getBytes(StandardCharsets.UTF_8)), 0);
            ch.force(false);
        }
        return new DirLock(ch);
    }

    /** What the holder wrote into {@code file}, stripped; "" when unreadable. */
    public static String owner(Path file) {
        try {
            return Files.readString(file, StandardCharsets.UTF_8).strip();
        } catch (IOException | RuntimeException e) {
            return "";
        }
    }

    /** Releases the lock (closing the channel releases it too; the OS does at exit). */
    @Override
    public void close() {
        try {
            channel.close();
        } catch (IOException ignored) {
            // the lock goes with the channel or, at the latest, with the process
        }
    }
}

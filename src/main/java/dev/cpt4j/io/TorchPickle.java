package dev.cpt4j.io;

import dev.cpt4j.UserError;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A restricted reader for the pickle that {@code torch.save} writes as {@code data.pkl}: it understands the
 * opcodes of pickle protocols 2–4 that torch and Python emit for nested dicts, lists, tuples, strings and numbers,
 * and it knows a short allow-list of Python globals — torch's tensor rebuilders, its storage classes and
 * {@code collections.OrderedDict}. It never executes anything: {@code REDUCE} on an allowed global is interpreted
 * by Java code here, producing plain Java values ({@link TensorRef}, maps, lists). Any other global
 * ({@code os.system}, {@code builtins.eval}, ...) is refused by a scan of the whole pickle before the
 * interpretation starts, so nothing is built from a file that names one.
 *
 * <p>Not supported: objects other than the above (NEWOBJ, INST, OBJ, extension registry), protocol 5 out-of-band
 * buffers, the pre-1.6 non-zip {@code torch.save} format (see {@link TorchZip}).
 */
public final class TorchPickle {
    /** A storage the pickle refers to by persistent id: {@code ('storage', torch.XStorage, key, location, numel)}. */
    public record StorageRef(String key, DType dtype, long numel, String location) {}

    /** A strided tensor view on a storage, as {@code torch._utils._rebuild_tensor_v2} receives it. */
    public record TensorRef(StorageRef storage, long offset, long[] size, long[] stride) {
        public long numel() {
            long n = 1;
            for (long d : size) n *= d;
            return n;
        }

        /** True when the elements are contiguous in row-major order from {@code offset}. */
        public boolean isContiguous() {
            long expect = 1;
            for (int i = size.length - 1; i >= 0; i--) {
                if (size[i] != 1 && stride[i] != expect) return false;
                expect *= size[i];
            }
            return true;
        }
    }

    /** A Python tuple. */
    public record Tuple(List<Object> items) {}

    /** A global from the allow-list, pushed by GLOBAL / STACK_GLOBAL. */
    private record Global(String module, String name) {
        String qualified() {
            return module + "." + name;
        }
    }

    private static final Object MARK = new Object() {
        @Override
        public String toString() {
            return "MARK";
        }
    };

    static final Map<String, DType> STORAGES = Map.ofEntries(
            Map.entry("FloatStorage", DType.F32), Map.entry("HalfStorage", DType.F16),
            Map.entry("BFloat16Storage", DType.BF16), Map.entry("DoubleStorage", DType.F64),
            Map.entry("LongStorage", DType.I64), Map.entry("IntStorage", DType.I32),
            Map.entry("ShortStorage", DType.I16), Map.entry("CharStorage", DType.I8),
            Map.entry("ByteStorage", DType.U8), Map.entry("BoolStorage", DType.BOOL));

    private static final Set<String> REBUILDERS = Set.of(
            "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor",
            "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
            "collections.OrderedDict");

    /** True when {@code module.name} is one of the globals torch uses to store tensors. */
    public static boolean isAllowed(String module, String name) {
        return REBUILDERS.contains(module + "." + name) || (module.equals("torch") && STORAGES.containsKey(name));
    }

    private final byte[] b;
    private final String where;
    private int pos;
    private final ArrayList<Object> stack = new ArrayList<>();
    private final ArrayList<Integer> marks = new ArrayList<>();
    private final Map<Long, Object> memo = new HashMap<>();

    private TorchPickle(byte[] b, String where) {
        this.b = b;
        this.where = where;
    }

    /**
     * Interprets {@code pickle} and returns its value: maps as {@link LinkedHashMap}, lists as {@link ArrayList},
     * tuples as {@link Tuple}, tensors as {@link TensorRef}, strings, {@link Long}/{@link BigInteger}, {@link Double},
     * {@link Boolean}, {@code byte[]} or null. {@code where} names the file in messages.
     */
    public static Object load(byte[] pickle, String where) {
        scanGlobals(pickle, where);
        return new TorchPickle(pickle, where).run();
    }

    // ------------------------------------------------------------ opcodes (Python's Lib/pickle.py names)
    private static final int PROTO = 0x80, FRAME = 0x95, STOP = '.', MARK_OP = '(', POP = '0', POP_MARK = '1', DUP = '2',
            NONE = 'N', NEWTRUE = 0x88, NEWFALSE = 0x89, BININT = 'J', BININT1 = 'K', BININT2 = 'M', LONG1 = 0x8a,
            LONG4 = 0x8b, BINFLOAT = 'G', BINUNICODE = 'X', SHORT_BINUNICODE = 0x8c, BINUNICODE8 = 0x8d,
            BINSTRING = 'T', SHORT_BINSTRING = 'U', BINBYTES = 'B', SHORT_BINBYTES = 'C', BINBYTES8 = 0x8e,
            EMPTY_DICT = '}', EMPTY_LIST = ']', EMPTY_TUPLE = ')', TUPLE = 't', TUPLE1 = 0x85, TUPLE2 = 0x86,
            TUPLE3 = 0x87, LIST = 'l', DICT = 'd', APPEND = 'a', APPENDS = 'e', SETITEM = 's', SETITEMS = 'u',
            BINPUT = 'q', LONG_BINPUT = 'r', MEMOIZE = 0x94, BINGET = 'h', LONG_BINGET = 'j', GLOBAL = 'c',
            STACK_GLOBAL = 0x93, BINPERSID = 'Q', REDUCE = 'R', BUILD = 'b', INST = 'i';

    /**
     * First pass: walks every opcode without interpreting and refuses the file if any GLOBAL or INST names a
     * global outside the allow-list, so that a malicious file is rejected before anything is built.
     */
    static void scanGlobals(byte[] b, String where) {
        int p = 0;
        while (p < b.length) {
            int op = b[p] & 0xFF;
            int at = p++;
            switch (op) {
                case STOP -> {
                    return;
                }
                case GLOBAL, INST -> {
                    int nl1 = indexOf(b, p, where), nl2 = indexOf(b, nl1 + 1, where);
                    String module = new String(b, p, nl1 - p, StandardCharsets.UTF_8);
                    String name = new String(b, nl1 + 1, nl2 - nl1 - 1, StandardCharsets.UTF_8);
                    if (op == INST || !isAllowed(module, name)) throw refused(where, module, name);
                    p = nl2 + 1;
                }
                case PROTO, BININT1, BINPUT, BINGET -> p += 1;
                case BININT2 -> p += 2;
                case BININT, LONG_BINPUT, LONG_BINGET -> p += 4;
                case BINFLOAT, FRAME -> p += 8;
                case LONG1, SHORT_BINUNICODE, SHORT_BINSTRING, SHORT_BINBYTES -> p += 1 + (p < b.length ? b[p] & 0xFF : 0);
                case LONG4, BINUNICODE, BINSTRING, BINBYTES -> p += 4 + (int) Math.min(Integer.MAX_VALUE, u32(b, p, where));
                case BINUNICODE8, BINBYTES8 -> p += 8 + (int) Math.min(Integer.MAX_VALUE, u64(b, p, where));
                default -> {
                    if (!NO_ARG.contains(op)) throw unsupported(where, op, at);
                }
            }
            if (p < 0) throw truncated(where);
        }
        throw truncated(where);
    }

    private static final Set<Integer> NO_ARG = Set.of(MARK_OP, POP, POP_MARK, DUP, NONE, NEWTRUE, NEWFALSE, EMPTY_DICT,
            EMPTY_LIST, EMPTY_TUPLE, TUPLE, TUPLE1, TUPLE2, TUPLE3, LIST, DICT, APPEND, APPENDS, SETITEM, SETITEMS,
            MEMOIZE, STACK_GLOBAL, BINPERSID, REDUCE, BUILD);

    private static UserError refused(String where, String module, String name) {
        return new UserError(where + ": refusing to load: the pickle references the Python global '" + module + "." + name
                + "', which torch does not use to store tensors (a checkpoint that names it may run code when Python loads it);"
                + " cpt4j never executes code from files — if you trust this file, convert it to safetensors in Python");
    }

    private static UserError unsupported(String where, int op, int at) {
        String c = op >= 0x20 && op < 0x7f ? "'" + (char) op + "' " : "";
        return new UserError(where + ": unsupported pickle opcode " + c + String.format("0x%02x", op) + " at byte " + at
                + "; cpt4j reads only what torch.save writes for tensors — convert the file to safetensors in Python");
    }

    private static UserError truncated(String where) {
        return new UserError(where + ": the pickle ends early; the file is truncated — download or save it again");
    }

    private static int indexOf(byte[] b, int from, String where) {
        for (int i = from; i < b.length; i++) if (b[i] == '\n') return i;
        throw truncated(where);
    }

    private static long u32(byte[] b, int p, String where) {
        if (p + 4 > b.length) throw truncated(where);
        return (b[p] & 0xFFL) | (b[p + 1] & 0xFFL) << 8 | (b[p + 2] & 0xFFL) << 16 | (b[p + 3] & 0xFFL) << 24;
    }

    private static long u64(byte[] b, int p, String where) {
        if (p + 8 > b.length) throw truncated(where);
        long v = 0;
        for (int i = 7; i >= 0; i--) v = v << 8 | (b[p + i] & 0xFFL);
        if (v < 0) throw truncated(where);
        return v;
    }

    // ------------------------------------------------------------ interpretation

    private Object run() {
        while (true) {
            if (pos >= b.length) throw truncated(where);
            int at = pos;
            int op = b[pos++] & 0xFF;
            switch (op) {
                case PROTO -> {
                    int v = u8();
                    if (v > 5) throw new UserError(where + ": pickle protocol " + v + " is newer than cpt4j understands; save with torch.save defaults");
                }
                case FRAME -> need(8);
                case STOP -> {
                    if (stack.size() != 1) throw corrupt("stack holds " + stack.size() + " values at STOP");
                    return stack.get(0);
                }
                case MARK_OP -> marks.add(stack.size());
                case POP -> pop();
                case POP_MARK -> popMark();
                case DUP -> push(peek());
                case NONE -> push(null);
                case NEWTRUE -> push(Boolean.TRUE);
                case NEWFALSE -> push(Boolean.FALSE);
                case BININT -> push((long) (int) u32(b, advance(4), where));
                case BININT1 -> push((long) u8());
                case BININT2 -> {
                    int p = advance(2);
                    push((long) ((b[p] & 0xFF) | (b[p + 1] & 0xFF) << 8));
                }
                case LONG1 -> push(readLong(u8()));
                case LONG4 -> push(readLong(len(u32(b, advance(4), where))));
                case BINFLOAT -> {
                    int p = advance(8);
                    long v = 0;
                    for (int i = 0; i < 8; i++) v = v << 8 | (b[p + i] & 0xFFL);  // big-endian
                    push(Double.longBitsToDouble(v));
                }
                case BINUNICODE -> push(str(len(u32(b, advance(4), where))));
                case SHORT_BINUNICODE -> push(str(u8()));
                case BINUNICODE8 -> push(str(len(u64(b, advance(8), where))));
                case BINSTRING -> push(str(len(u32(b, advance(4), where))));
                case SHORT_BINSTRING -> push(str(u8()));
                case BINBYTES -> push(bytes(len(u32(b, advance(4), where))));
                case SHORT_BINBYTES -> push(bytes(u8()));
                case BINBYTES8 -> push(bytes(len(u64(b, advance(8), where))));
                case EMPTY_DICT -> push(new LinkedHashMap<Object, Object>());
                case EMPTY_LIST -> push(new ArrayList<Object>());
                case EMPTY_TUPLE -> push(new Tuple(List.of()));
                case TUPLE -> push(new Tuple(popMark()));
                case TUPLE1, TUPLE2, TUPLE3 -> {
                    int n = op - TUPLE1 + 1;
                    if (stack.size() - floor() < n) throw corrupt("tuple of " + n + " on a shorter stack");
                    List<Object> items = new ArrayList<>(stack.subList(stack.size() - n, stack.size()));
                    for (int i = 0; i < n; i++) pop();
                    push(new Tuple(Collections.unmodifiableList(items)));
                }
                case LIST -> push(new ArrayList<>(popMark()));
                case DICT -> {
                    List<Object> kv = popMark();
                    if (kv.size() % 2 != 0) throw corrupt("DICT with an odd number of items");
                    Map<Object, Object> m = new LinkedHashMap<>();
                    for (int i = 0; i < kv.size(); i += 2) m.put(key(kv.get(i)), kv.get(i + 1));
                    push(m);
                }
                case APPEND -> {
                    Object v = pop();
                    list(peek()).add(v);
                }
                case APPENDS -> {
                    List<Object> items = popMark();
                    list(peek()).addAll(items);
                }
                case SETITEM -> {
                    Object v = pop(), k = pop();
                    map(peek()).put(key(k), v);
                }
                case SETITEMS -> {
                    List<Object> kv = popMark();
                    if (kv.size() % 2 != 0) throw corrupt("SETITEMS with an odd number of items");
                    Map<Object, Object> m = map(peek());
                    for (int i = 0; i < kv.size(); i += 2) m.put(key(kv.get(i)), kv.get(i + 1));
                }
                case BINPUT -> memo.put((long) u8(), peek());
                case LONG_BINPUT -> memo.put(u32(b, advance(4), where), peek());
                case MEMOIZE -> memo.put((long) memo.size(), peek());
                case BINGET -> push(get(u8()));
                case LONG_BINGET -> push(get(u32(b, advance(4), where)));
                case GLOBAL -> {
                    String module = line(), name = line();
                    push(global(module, name));
                }
                case STACK_GLOBAL -> {
                    Object name = pop(), module = pop();
                    if (!(module instanceof String m) || !(name instanceof String n)) throw corrupt("STACK_GLOBAL needs two strings");
                    push(global(m, n));
                }
                case BINPERSID -> push(persistent(pop()));
                case REDUCE -> {
                    Object args = pop(), fn = pop();
                    push(reduce(fn, args));
                }
                case BUILD -> {
                    Object state = pop();
                    Object obj = peek();
                    // OrderedDict state is its instance __dict__ (torch stores the state dict's _metadata there):
                    // nothing we need. A rebuilt tensor's state is Python attributes: ignored as well.
                    if (!(obj instanceof Map) && !(obj instanceof TensorRef))
                        throw corrupt("BUILD on " + describe(obj));
                    if (state != null && !(state instanceof Map) && !(state instanceof Tuple)) throw corrupt("BUILD with state " + describe(state));
                }
                default -> throw unsupported(where, op, at);
            }
        }
    }

    private Object global(String module, String name) {
        if (!isAllowed(module, name)) throw refused(where, module, name);
        return new Global(module, name);
    }

    private Object persistent(Object pid) {
        // torch.serialization: ('storage', storage_type, key, location, numel)
        if (!(pid instanceof Tuple t) || t.items().size() != 5 || !"storage".equals(t.items().get(0)))
            throw corrupt("persistent id " + describe(pid) + " is not a torch storage reference");
        List<Object> it = t.items();
        if (!(it.get(1) instanceof Global g) || !g.module().equals("torch") || !STORAGES.containsKey(g.name()))
            throw corrupt("storage type " + describe(it.get(1)) + " is not a torch storage class");
        if (!(it.get(2) instanceof String key) || !(it.get(4) instanceof Long numel) || numel < 0)
            throw corrupt("malformed storage reference " + describe(pid));
        if (key.contains("/") || key.contains("\\") || key.contains(".."))
            throw corrupt("storage key '" + key + "' is not a plain name");
        return new StorageRef(key, STORAGES.get(g.name()), numel, String.valueOf(it.get(3)));
    }

    private Object reduce(Object fn, Object args) {
        if (!(fn instanceof Global g)) throw corrupt("REDUCE on " + describe(fn) + ", which is not a callable torch uses");
        if (!(args instanceof Tuple t)) throw corrupt("REDUCE arguments are not a tuple");
        List<Object> a = t.items();
        switch (g.qualified()) {
            case "collections.OrderedDict" -> {
                Map<Object, Object> m = new LinkedHashMap<>();
                if (a.size() == 1 && a.get(0) instanceof List<?> pairs) {
                    for (Object p : pairs) {
                        if (!(p instanceof Tuple kv) || kv.items().size() != 2) throw corrupt("OrderedDict item is not a pair");
                        m.put(key(kv.items().get(0)), kv.items().get(1));
                    }
                } else if (!a.isEmpty()) {
                    throw corrupt("OrderedDict with arguments " + describe(args));
                }
                return m;
            }
            case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor" -> {
                // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None)
                if (a.size() < 4) throw corrupt(g.name() + " with " + a.size() + " arguments");
                if (!(a.get(0) instanceof StorageRef s)) throw corrupt(g.name() + " without a storage");
                if (!(a.get(1) instanceof Long off) || off < 0) throw corrupt(g.name() + " with a bad storage offset");
                long[] size = longs(a.get(2)), stride = longs(a.get(3));
                if (size.length != stride.length) throw corrupt("tensor size and stride differ in rank");
                long last = off;  // largest element index touched
                boolean empty = false;
                for (int i = 0; i < size.length; i++) {
                    if (size[i] < 0 || stride[i] < 0) throw corrupt("negative tensor size or stride");
                    if (size[i] == 0) empty = true;
                    else last += (size[i] - 1) * stride[i];
                }
                if (!empty && last >= s.numel())
                    throw corrupt("tensor view (offset " + off + ", size " + Arrays.toString(size) + ", stride "
                            + Arrays.toString(stride) + ") reaches past its storage of " + s.numel() + " elements");
                return new TensorRef(s, off, size, stride);
            }
            case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state" -> {
                if (a.isEmpty() || !(a.get(0) instanceof TensorRef tr)) throw corrupt(g.name() + " without a tensor");
                return tr;
            }
            default -> throw corrupt(g.qualified() + " cannot be called");
        }
    }

    private long[] longs(Object o) {
        if (!(o instanceof Tuple t)) throw corrupt("expected a tuple of integers, got " + describe(o));
        long[] r = new long[t.items().size()];
        for (int i = 0; i < r.length; i++) {
            if (!(t.items().get(i) instanceof Long l)) throw corrupt("expected a tuple of integers");
            r[i] = l;
        }
        return r;
    }

    private static Object key(Object k) {
        return k;  // keys are plain Java values (strings, numbers, tuples); nothing Python-side is hashed
    }

    @SuppressWarnings("unchecked")
    private List<Object> list(Object o) {
        if (o instanceof List<?> l) return (List<Object>) l;
        throw corrupt("append to " + describe(o));
    }

    @SuppressWarnings("unchecked")
    private Map<Object, Object> map(Object o) {
        if (o instanceof Map<?, ?> m) return (Map<Object, Object>) m;
        throw corrupt("set item on " + describe(o));
    }

    private static String describe(Object o) {
        if (o == null) return "None";
        if (o instanceof Global g) return g.qualified();
        if (o instanceof String s) return "'" + s + "'";
        return o.getClass().getSimpleName();
    }

    private UserError corrupt(String what) {
        return new UserError(where + ": unexpected pickle content at byte " + pos + " (" + what
                + "); the file is corrupt or was not written by torch.save — convert it to safetensors in Python");
    }

    private int floor() {
        return marks.isEmpty() ? 0 : marks.get(marks.size() - 1);
    }

    private void push(Object o) {
        stack.add(o);
    }

    private Object pop() {
        if (stack.size() <= floor()) throw corrupt("pop from an empty stack");
        return stack.remove(stack.size() - 1);
    }

    private Object peek() {
        if (stack.size() <= floor()) throw corrupt("empty stack");
        return stack.get(stack.size() - 1);
    }

    private List<Object> popMark() {
        if (marks.isEmpty()) throw corrupt("no MARK");
        int m = marks.remove(marks.size() - 1);
        List<Object> items = new ArrayList<>(stack.subList(m, stack.size()));
        while (stack.size() > m) stack.remove(stack.size() - 1);
        return Collections.unmodifiableList(items);
    }

    private Object get(long idx) {
        if (!memo.containsKey(idx)) throw corrupt("memo key " + idx + " not set");
        return memo.get(idx);
    }

    private int u8() {
        return b[advance(1)] & 0xFF;
    }

    private void need(int n) {
        advance(n);
    }

    private int advance(int n) {
        if (n < 0 || pos > b.length - n) throw truncated(where);
        int p = pos;
        pos += n;
        return p;
    }

    private int len(long n) {
        if (n > b.length - pos) throw truncated(where);
        return (int) n;
    }

    private String str(int n) {
        return new String(b, advance(n), n, StandardCharsets.UTF_8);
    }

    private byte[] bytes(int n) {
        int p = advance(n);
        return Arrays.copyOfRange(b, p, p + n);
    }

    private String line() {
        int nl = indexOf(b, pos, where);
        String s = new String(b, pos, nl - pos, StandardCharsets.UTF_8);
        pos = nl + 1;
        return s;
    }

    private Object readLong(int n) {
        int p = advance(n);
        if (n == 0) return 0L;
        byte[] be = new byte[n];
        for (int i = 0; i < n; i++) be[i] = b[p + n - 1 - i];  // little-endian two's complement
        BigInteger v = new BigInteger(be);
        return v.bitLength() < 64 ? (Object) v.longValue() : v;
    }
}

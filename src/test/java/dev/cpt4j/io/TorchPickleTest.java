package dev.cpt4j.io;

import static dev.cpt4j.io.TorchZipTest.pickle;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cpt4j.UserError;
import java.math.BigInteger;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class TorchPickleTest {
    @Test
    void plainValues() {
        // {'a': [1, -2, 300, 70000, True, None, 1.5], 'b': ('x', b'yz'), 'big': 2**70} as pickle protocol 2 writes it
        byte[] p = pickle("}q\u0000(X\u0001\u0000\u0000\u0000a]q\u0001(K\u0001J\u00fe\u00ff\u00ff\u00ffM,\u0001J\u0070\u0011\u0001\u0000\u0088NG?\u00f8\u0000\u0000\u0000\u0000\u0000\u0000e"
                + "X\u0001\u0000\u0000\u0000bU\u0001xC\u0002yz\u0086X\u0003\u0000\u0000\u0000big\u008a\t\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000@u.");
        Object o = TorchPickle.load(p, "t.pkl");
        assertThat(o).isInstanceOf(Map.class);
        Map<?, ?> m = (Map<?, ?>) o;
        assertThat(new java.util.ArrayList<Object>((List<?>) m.get("a"))).containsExactly(1L, -2L, 300L, 70000L, true, null, 1.5);
        TorchPickle.Tuple t = (TorchPickle.Tuple) m.get("b");
        assertThat(t.items().get(0)).isEqualTo("x");
        assertThat((byte[]) t.items().get(1)).containsExactly('y', 'z');
        assertThat(m.get("big")).isEqualTo(BigInteger.TWO.pow(70));
    }

    @Test
    void memoAndOrderedDict() {
        // OrderedDict([('k', 'v')]) then the same string again through the memo
        byte[] p = pickle("ccollections\nOrderedDict\nq\u0000]q\u0001X\u0001\u0000\u0000\u0000kq\u0002X\u0001\u0000\u0000\u0000vq\u0003\u0086q\u0004a\u0085Rq\u0005h\u0002X\u0001\u0000\u0000\u0000zs.");
        Map<Object, Object> m = new java.util.LinkedHashMap<>((Map<?, ?>) TorchPickle.load(p, "t.pkl"));
        assertThat(m).containsExactly(Map.entry("k", "z"));
    }

    @Test
    void refusesEveryOtherGlobal() {
        for (String g : List.of("os\nsystem", "posix\nsystem", "builtins\neval", "builtins\nexec", "subprocess\nPopen",
                "torch\nload", "torch._utils\n_rebuild_qtensor", "collections\ndefaultdict", "__builtin__\ngetattr")) {
            byte[] p = pickle("c" + g + "\n)R.");
            assertThatThrownBy(() -> TorchPickle.load(p, "evil.pkl")).isInstanceOf(UserError.class)
                    .hasMessageStartingWith("evil.pkl: refusing to load: the pickle references the Python global '" + g.replace('\n', '.') + "'");
        }
    }

    @Test
    void refusalHappensBeforeInterpretation() {
        // The stack underflows (POP on an empty stack) long before the global is reached: the scan still reports
        // the global, so nothing of a file naming one is ever interpreted.
        byte[] p = pickle("0}X\u0001\u0000\u0000\u0000acos\nsystem\nX\u0002\u0000\u0000\u0000ls\u0085Rs.");
        assertThatThrownBy(() -> TorchPickle.load(p, "evil.pkl")).hasMessageContaining("'os.system'");
        // without the global the same underflow is a corruption error
        byte[] q = pickle("0}.");
        assertThatThrownBy(() -> TorchPickle.load(q, "bad.pkl")).hasMessageContaining("bad.pkl: unexpected pickle content");
    }

    @Test
    void stackGlobalIsCheckedToo() {
        // protocol 4 names globals from the stack
        byte[] p = pickle("\u008c\u0002os\u0094\u008c\u0006system\u0094\u0093\u0094)R.");
        assertThatThrownBy(() -> TorchPickle.load(p, "evil.pkl")).hasMessageContaining("refusing to load").hasMessageContaining("'os.system'");
    }

    @Test
    void unsupportedOpcodesAndTruncation() {
        byte[] inst = pickle("(ios\nsystem\n.");
        assertThatThrownBy(() -> TorchPickle.load(inst, "i.pkl")).hasMessageContaining("refusing to load").hasMessageContaining("'os.system'");
        byte[] newobj = pickle("N)\u0081.");
        assertThatThrownBy(() -> TorchPickle.load(newobj, "n.pkl")).hasMessageContaining("n.pkl: unsupported pickle opcode 0x81 at byte 4");
        byte[] cut = pickle("}X\u0010\u0000\u0000\u0000abc");
        assertThatThrownBy(() -> TorchPickle.load(cut, "c.pkl")).hasMessage("c.pkl: the pickle ends early; the file is truncated — download or save it again");
        byte[] noStop = pickle("}");
        assertThatThrownBy(() -> TorchPickle.load(noStop, "s.pkl")).hasMessageContaining("ends early");
    }

    @Test
    void tensorViewPastItsStorageIsRejected() {
        // _rebuild_tensor_v2(storage of 4 floats, offset 3, size (2,), stride (1,)) reaches element 4
        byte[] p = pickle("ctorch._utils\n_rebuild_tensor_v2\n((X\u0007\u0000\u0000\u0000storagectorch\nFloatStorage\n"
                + "X\u0001\u0000\u0000\u00000X\u0003\u0000\u0000\u0000cpuK\u0004tQK\u0003K\u0002\u0085K\u0001\u0085\u0089}tR.");
        assertThatThrownBy(() -> TorchPickle.load(p, "v.pkl")).isInstanceOf(UserError.class)
                .hasMessageContaining("reaches past its storage of 4 elements");
    }
}

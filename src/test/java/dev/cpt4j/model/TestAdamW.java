package dev.cpt4j.model;

/**
 * Test-only AdamW matching torch.optim.AdamW with one parameter group (decoupled weight decay on every
 * parameter): p ← p·(1 − lr·wd); m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²;
 * p ← p − lr/(1−β1ᵗ) · m / (√v / √(1−β2ᵗ) + eps).
 */
final class TestAdamW {
    private final float lr, b1, b2, eps, wd;
    private final float[] m, v;
    private int t;

    TestAdamW(int n, float lr, float b1, float b2, float eps, float wd) {
        this.lr = lr;
        this.b1 = b1;
        this.b2 = b2;
        this.eps = eps;
        this.wd = wd;
        this.m = new float[n];
        this.v = new float[n];
    }

    void step(float[] p, float[] g) {
        t++;
        double bc1 = 1 - Math.pow(b1, t), bc2 = 1 - Math.pow(b2, t);
        float stepSize = (float) (lr / bc1);
        float bc2Sqrt = (float) Math.sqrt(bc2);
        for (int i = 0; i < p.length; i++) {
            p[i] *= 1 - lr * wd;
            m[i] = b1 * m[i] + (1 - b1) * g[i];
            v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
            float denom = (float) Math.sqrt(v[i]) / bc2Sqrt + eps;
            p[i] -= stepSize * m[i] / denom;
        }
    }
}

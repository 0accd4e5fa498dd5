namespace Ddsm.Engine;

public static partial class F
{
    /// <summary>
    /// op(a)·op(b) for rank-2 tensors (M×K by K×N) or batched rank-3 ones (B, ·, ·), where op
    /// transposes the last two dims when asked. Backward is two more GEMMs accumulating (beta = 1).
    /// </summary>
    public static Tensor MatMul(Tensor a, Tensor b, bool transA = false, bool transB = false)
    {
        const string name = "matmul";
        string Shapes() =>
            $"{ShapeUtil.Str(a.Shape)}{(transA ? "ᵀ" : "")} · {ShapeUtil.Str(b.Shape)}{(transB ? "ᵀ" : "")}";
        Check.SameBackend(name, a, b);
        Check.That(a.Rank is 2 or 3 && b.Rank == a.Rank, name,
                   $"operands must both be rank 2 or both rank 3: {Shapes()}");
        int batch = a.Rank == 3 ? a.Shape[0] : 1;
        Check.That(b.Rank == 2 || b.Shape[0] == batch, name, $"batch sizes differ: {Shapes()}");
        int ar = a.Shape[^2], ac = a.Shape[^1], br = b.Shape[^2], bc = b.Shape[^1];
        int m = transA ? ac : ar, k = transA ? ar : ac, kb = transB ? bc : br, nn = transB ? br : bc;
        Check.That(k == kb, name, $"inner dimensions differ ({k} vs {kb}): {Shapes()}");

        var be = a.Backend;
        var c = a.Rank == 3 ? Tensor.Empty(be, batch, m, nn) : Tensor.Empty(be, m, nn);
        long sa = (long)ar * ac, sb = (long)br * bc, sc = (long)m * nn;
        var fwd = new GemmDesc(transA, transB, m, nn, k, 1f, 0f, 0, ac, 0, bc, 0, nn, batch, sa, sb, sc);
        using (Profiler.Op(name, fwd.Flops, be)) be.Gemm(fwd, a.Buffer, b.Buffer, c.Buffer);

        if (Tape.Needs(a, b))
            Tape.Record(name, c, [a, b], g =>
            {
                // C = op(A)·op(B) ⇒ d op(A) = dC·op(B)ᵀ and d op(B) = op(A)ᵀ·dC; when A (or B) is
                // stored transposed, its gradient is the transpose of that, which swaps the operands.
                if (a.RequiresGrad)
                {
                    var da = transA
                        // dA = op(B)·dCᵀ
                        ? new GemmDesc(transB, true, k, m, nn, 1f, 1f, 0, bc, 0, nn, 0, ac, batch, sb, sc, sa)
                        // dA = dC·op(B)ᵀ
                        : new GemmDesc(false, !transB, m, k, nn, 1f, 1f, 0, nn, 0, bc, 0, ac, batch, sc, sb, sa);
                    using (Profiler.Op("matmul_a.bwd", da.Flops, be))
                        if (transA) be.Gemm(da, b.Buffer, g.Buffer, a.EnsureGrad().Buffer);
                        else be.Gemm(da, g.Buffer, b.Buffer, a.EnsureGrad().Buffer);
                }
                if (b.RequiresGrad)
                {
                    var db = transB
                        // dB = dCᵀ·op(A)
                        ? new GemmDesc(true, transA, nn, k, m, 1f, 1f, 0, nn, 0, ac, 0, bc, batch, sc, sa, sb)
                        // dB = op(A)ᵀ·dC
                        : new GemmDesc(!transA, false, k, nn, m, 1f, 1f, 0, ac, 0, nn, 0, bc, batch, sa, sc, sb);
                    using (Profiler.Op("matmul_b.bwd", db.Flops, be))
                        if (transB) be.Gemm(db, g.Buffer, a.Buffer, b.EnsureGrad().Buffer);
                        else be.Gemm(db, a.Buffer, g.Buffer, b.EnsureGrad().Buffer);
                }
            });
        return c;
    }
}

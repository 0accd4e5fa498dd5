using Ddsm.Engine;
using Ddsm.Engine.Cpu;

namespace Ddsm.Tests.Engine;

/// <summary>F.MatMul forward and both gradients (OpCheck default tolerances) for every transpose pair.</summary>
public abstract class MatMulOpTests : BackendFixture
{
    /// <summary>op(A)·op(B) in double for one batch slice.</summary>
    private static double[] Ref(double[] a, double[] b, int batch, int m, int n, int k, bool ta, bool tb)
    {
        var c = new double[batch * m * n];
        for (int q = 0; q < batch; q++)
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double s = 0;
            for (int p = 0; p < k; p++)
                s += a[q * m * k + (ta ? p * m + i : i * k + p)] * b[q * k * n + (tb ? j * k + p : p * n + j)];
            c[q * m * n + i * n + j] = s;
        }
        return c;
    }

    [TestCase(false, false)]
    [TestCase(true, false)]
    [TestCase(false, true)]
    [TestCase(true, true)]
    public void MatMul2dAnd3d(bool ta, bool tb)
    {
        var r = new Rng(31);
        int m = 7, k = 5, n = 18;
        int[] aShape = ta ? [k, m] : [m, k], bShape = tb ? [n, k] : [k, n];
        OpCheck.Run(B, $"matmul ta={ta} tb={tb}", t => F.MatMul(t[0], t[1], ta, tb),
            x => Ref(x[0], x[1], 1, m, n, k, ta, tb), [Input.Random(r, aShape), Input.Random(r, bShape)]);
        int batch = 3;
        OpCheck.Run(B, $"batched matmul ta={ta} tb={tb}", t => F.MatMul(t[0], t[1], ta, tb),
            x => Ref(x[0], x[1], batch, m, n, k, ta, tb),
            [Input.Random(r, [batch, .. aShape]), Input.Random(r, [batch, .. bShape])]);
    }

    [Test]
    public void BadShapesNameOpAndShapes()
    {
        using var scope = new TensorScope();
        var ex = Assert.Throws<ArgumentException>(() => F.MatMul(Tensor.Zeros(B, 2, 3), Tensor.Zeros(B, 4, 5)));
        Assert.That(ex!.Message, Does.Contain("matmul").And.Contain("(2, 3)").And.Contain("(4, 5)"));
    }
}

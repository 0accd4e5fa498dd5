using System.Buffers.Binary;
using System.Runtime.Intrinsics.X86;

namespace Ddsm.IO;

/// <summary>
/// CRC-32C (Castagnoli: reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF), the checksum of
/// iSCSI and ext4. Chosen for checkpoint checksums because x86 (SSE4.2) and ARM have an instruction for it:
/// 8 bytes a cycle, so checking a checkpoint costs far less than reading it. A table fallback elsewhere.
/// </summary>
public static class Crc32C
{
    private static readonly uint[] Table = Crc32.MakeTable(0x82F63B78u);

    public static uint Compute(ReadOnlySpan<byte> data)
    {
        uint c = 0xFFFFFFFFu;
        int i = 0;
        if (Sse42.X64.IsSupported)
        {
            ulong c64 = c;
            for (; i + 8 <= data.Length; i += 8)
                c64 = Sse42.X64.Crc32(c64, BinaryPrimitives.ReadUInt64LittleEndian(data[i..]));
            c = (uint)c64;
        }
        else if (System.Runtime.Intrinsics.Arm.Crc32.Arm64.IsSupported)
        {
            for (; i + 8 <= data.Length; i += 8) c = System.Runtime.Intrinsics.Arm.Crc32.Arm64.ComputeCrc32C(
                    c, BinaryPrimitives.ReadUInt64LittleEndian(data[i..]));
        }
        for (; i < data.Length; i++) c = Table[(c ^ data[i]) & 0xFF] ^ (c >> 8);
        return ~c;
    }
}

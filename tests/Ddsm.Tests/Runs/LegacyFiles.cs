using System.Text.Json.Nodes;

namespace Ddsm.Tests.Runs;

/// <summary>Files as earlier versions wrote them.</summary>
internal static class LegacyFiles
{
    /// <summary>A model config JSON as written before the noise schedule was part of it.</summary>
    public static string ConfigWithoutSchedule(string configJson)
    {
        var o = JsonNode.Parse(configJson)!.AsObject();
        Assert.That(o.Remove("Schedule") && o.Remove("DiffusionSteps"), "the config of today carries the schedule");
        return o.ToJsonString();
    }

    /// <summary>A file's metadata as written before checksums were stamped into it.</summary>
    public static Dictionary<string, string> WithoutChecksums(IReadOnlyDictionary<string, string> metadata)
    {
        var m = new Dictionary<string, string>(metadata);
        Assert.That(m.Remove(Ddsm.IO.TensorChecksums.Key), "files of today carry checksums");
        return m;
    }
}

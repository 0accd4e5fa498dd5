namespace Ddsm.Engine.Ilgpu;

/// <summary>
/// The accelerator cannot do what was asked: no CUDA device or driver, a failed driver call (named in
/// the message), a kernel that failed to compile or launch, memory exhausted. The CLI reports the
/// message on one line; anything else escaping a backend is a bug and keeps its stack trace.
/// </summary>
public class DeviceException : Exception
{
    public DeviceException(string message) : base(message) { }
    public DeviceException(string message, Exception inner) : base(message, inner) { }
}

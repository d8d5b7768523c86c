using System.Reflection;

namespace Warden.Gateway;

/// <summary>Facts about this build of Warden.</summary>
public static class GatewayInfo
{
    /// <summary>The product version.</summary>
    public static string Version { get; } =
        typeof(GatewayInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";
}

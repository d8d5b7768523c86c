namespace Warden.Gateway.Security;

/// <summary>Claim types Warden puts on authenticated principals.</summary>
public static class WardenClaims
{
    /// <summary>The principal's name.</summary>
    public const string Name = "warden:name";

    /// <summary>agent, operator or approver.</summary>
    public const string Kind = "warden:kind";

    /// <summary>One claim per group.</summary>
    public const string Group = "warden:group";

    /// <summary>The authentication scheme for bearer tokens.</summary>
    public const string Scheme = "WardenBearer";
}

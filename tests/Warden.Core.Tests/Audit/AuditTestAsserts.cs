using Warden.Core.Audit;

namespace Warden.Core.Tests.Audit;

internal static class Assert
{
    public static void Bad(AuditVerification result, AuditDamage damage, long seq)
    {
        Xunit.Assert.False(result.Ok, "expected damage, verify said ok");
        Xunit.Assert.True(damage == result.Damage && seq == result.BadSeq, $"expected {damage} at {seq}, got {result.Damage} at {result.BadSeq}: {result.Message}");
    }

    public static void True(bool condition, string? message = null) => Xunit.Assert.True(condition, message);

    public static void False(bool condition, string? message = null) => Xunit.Assert.False(condition, message);

    public static void Equal<T>(T expected, T actual) => Xunit.Assert.Equal(expected, actual);

    public static void Equal<T>(IEnumerable<T> expected, IEnumerable<T> actual) => Xunit.Assert.Equal(expected, actual);

    public static void NotEqual<T>(IEnumerable<T> expected, IEnumerable<T> actual) => Xunit.Assert.NotEqual(expected, actual);

    public static void StartsWith(string expected, string? actual) => Xunit.Assert.StartsWith(expected, actual, StringComparison.Ordinal);

    public static void DoesNotContain(string expected, string? actual) => Xunit.Assert.DoesNotContain(expected, actual, StringComparison.Ordinal);

    public static void Contains(string expected, string? actual) => Xunit.Assert.Contains(expected, actual, StringComparison.Ordinal);
}

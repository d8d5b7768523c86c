namespace Warden.Core.Text;

/// <summary>A problem found in a configuration or policy file, with where it is and what to do about it.</summary>
/// <param name="File">The file's path as given.</param>
/// <param name="Line">1-based line.</param>
/// <param name="Column">1-based column.</param>
/// <param name="Message">What is wrong.</param>
/// <param name="Hint">How to fix it, when there is an obvious fix.</param>
/// <param name="IsWarning">True for problems that do not stop the file from loading.</param>
public sealed record SourceDiagnostic(string File, int Line, int Column, string Message, string? Hint = null, bool IsWarning = false)
{
    /// <inheritdoc />
    public override string ToString() =>
        $"{File}:{Line}:{Column}: {(IsWarning ? "warning" : "error")}: {Message}{(Hint is null ? "" : $" (hint: {Hint})")}";
}

/// <summary>Thrown when a file cannot be loaded; carries every problem found, not just the first.</summary>
public sealed class SourceException : Exception
{
    /// <summary>Creates the exception.</summary>
    public SourceException(IReadOnlyList<SourceDiagnostic> diagnostics)
        : base(string.Join(Environment.NewLine, diagnostics))
    {
        Diagnostics = diagnostics;
    }

    /// <summary>Creates the exception.</summary>
    public SourceException() : this([]) { }

    /// <summary>Creates the exception.</summary>
    public SourceException(string message) : this([new SourceDiagnostic("", 0, 0, message)]) { }

    /// <summary>Creates the exception.</summary>
    public SourceException(string message, Exception inner) : base(message, inner)
    {
        Diagnostics = [new SourceDiagnostic("", 0, 0, message)];
    }

    /// <summary>Every problem found.</summary>
    public IReadOnlyList<SourceDiagnostic> Diagnostics { get; } = [];
}

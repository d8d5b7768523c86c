namespace Warden.Core.Storage;

/// <summary>
/// The store could not do what was asked: its file or server cannot be reached, opened or written,
/// its schema is newer than this build understands, or the database reported an error.
/// </summary>
/// <remarks>
/// Every <see cref="IWardenStore"/> implementation reports faults of the backing store with this type
/// (the driver's exception is the <see cref="Exception.InnerException"/>), so callers can fail closed
/// on one exception type whatever the store. Misuse of the API (bad arguments, a disposed store) and
/// cancellation keep their usual exception types.
/// </remarks>
public sealed class StoreUnavailableException : Exception
{
    /// <summary>Creates the exception with a generic message.</summary>
    public StoreUnavailableException()
        : base("The Warden store is unavailable.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public StoreUnavailableException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the fault that caused it.</summary>
    public StoreUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

namespace Warden.Gateway.Tests.Infrastructure;

/// <summary>
/// A gateway shared by the tests of one class (xunit class fixture): started once, stopped with its
/// upstreams and temp folder when the class is done. Subclasses say what it fronts.
/// </summary>
public abstract class GatewayFixture : IAsyncLifetime
{
    private WardenGateway? _gateway;

    internal TempDir Temp { get; } = new();

    internal WardenGateway Gateway => _gateway ?? throw new InvalidOperationException("the gateway did not start");

    internal abstract Task<WardenGateway> StartAsync(TempDir temp);

    /// <summary>Stops what the subclass started besides the gateway (after the gateway is stopped).</summary>
    internal virtual ValueTask StopExtrasAsync() => ValueTask.CompletedTask;

    public async Task InitializeAsync() => _gateway = await StartAsync(Temp);

    public async Task DisposeAsync()
    {
        if (_gateway is not null)
        {
            await _gateway.DisposeAsync();
        }

        await StopExtrasAsync();
        Temp.Dispose();
    }
}

using System.CommandLine;
using Spectre.Console;
using Warden.Core.Identity;
using Warden.Core.Storage;
using Warden.Gateway;

namespace Warden.Cli.Commands;

/// <summary>
/// Bootstraps the first operator by writing the store directly. This is the one state change that does not
/// go through the gateway's API, because no token exists yet; it needs write access to the data folder,
/// which only the machine's administrator has.
/// </summary>
internal static class InitCommand
{
    public static Command Create()
    {
        var config = CommonOptions.Config();
        var name = new Option<string>("--operator") { Description = "Name of the first operator", DefaultValueFactory = _ => "admin" };
        var force = new Option<bool>("--force") { Description = "Add an operator even if operators exist (recovery when every token is lost)" };
        var noSave = new Option<bool>("--no-save") { Description = "Print the token only; do not save it in the per-user credentials file" };
        var command = new Command("init", "Create the data folder and the first operator (local file access only); prints its token once") { config, name, force, noSave };
        command.SetAction(async (parse, ct) =>
        {
            var cfg = ServeCommand.LoadConfig(parse.GetValue(config)!);
            await using var store = StoreFactory.Create(cfg, TimeProvider.System);
            try
            {
                await store.InitializeAsync(ct).ConfigureAwait(false);
            }
            catch (StoreUnavailableException ex)
            {
                throw new CliException("cannot open the store: " + ex.Message, 2);
            }

            var operators = await store.ListPrincipalsAsync(PrincipalKind.Operator, false, ct).ConfigureAwait(false);
            if (operators.Count > 0 && !parse.GetValue(force))
            {
                throw new CliException($"operators exist already ({string.Join(", ", operators.Select(o => o.Name))}); use 'warden operators add' with an operator token, or --force to recover", 2);
            }

            var operatorName = parse.GetValue(name)!;
            var token = Tokens.Create(PrincipalKind.Operator);
            if (!await store.AddPrincipalAsync(new Principal(PrincipalKind.Operator, operatorName, [], DateTimeOffset.UtcNow), Tokens.Hash(token), ct).ConfigureAwait(false))
            {
                throw new CliException($"an operator named '{operatorName}' exists; choose another --operator name", 2);
            }

            await store.PublishChangeAsync(ChangeTopics.Principal, operatorName, "added", ct).ConfigureAwait(false);
            var url = "http://" + cfg.Listen.Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal);
            if (!parse.GetValue(noSave))
            {
                new SavedCredentials { Url = url, Token = token }.Save();
            }

            AnsiConsole.MarkupLine($"[green]Operator '{Markup.Escape(operatorName)}' created.[/] Its token (shown once):");
            Console.WriteLine(token);
            if (!parse.GetValue(noSave))
            {
                AnsiConsole.MarkupLine($"Saved with the gateway URL {Markup.Escape(url)} in [bold]{Markup.Escape(SavedCredentials.FilePath)}[/] (mode 0600).");
            }

            return 0;
        });
        return command;
    }
}

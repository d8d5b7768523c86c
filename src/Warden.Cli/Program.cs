using System.CommandLine;
using Warden.Cli;
using Warden.Cli.Commands;

var root = new RootCommand("Warden: a control plane for AI agents. It proxies MCP between agents and tool servers and decides every call by policy.")
{
    ServeCommand.Create(),
    StdioCommand.Create(),
    InitCommand.Create(),
    StatusCommand.Create(),
    PrincipalCommands.Create("agents", Warden.Core.Identity.PrincipalKind.Agent, "Manage agent identities (tokens agents present at /mcp)"),
    PrincipalCommands.Create("operators", Warden.Core.Identity.PrincipalKind.Operator, "Manage operators (people who administer Warden)"),
    PrincipalCommands.Create("approvers", Warden.Core.Identity.PrincipalKind.Approver, "Manage approvers (people who decide held calls)"),
    PolicyCommands.Create(),
    StopCommands.Stop(),
    StopCommands.Resume(),
    StopCommands.List(),
    ApprovalCommands.Create(),
    AuditCommands.Create(),
};
root.Options.Add(CommonOptions.NoColor);

return await CliRunner.RunAsync(root, args).ConfigureAwait(false);

using DeepSeekRL.Silo.CommandLine;

return await SiloCommandLine.Create().Parse(args).InvokeAsync();

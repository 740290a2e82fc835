using DeepSeekRL.Silo.CommandLine;

return await SiloCommandLine.InvokeAsync(args);

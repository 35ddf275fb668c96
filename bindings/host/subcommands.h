/*
 * The subcommands of the `lcmcoord` program. Each takes the arguments that follow its
 * name (argv[0] is the subcommand name) and returns the process exit status; main.c only
 * picks one. Usage errors print one usage line on stderr and return 2.
 */
#ifndef LCMCOORD_HOST_SUBCOMMANDS_H
#define LCMCOORD_HOST_SUBCOMMANDS_H

int lcmc_run_main(int argc, char **argv);
int lcmc_repl_main(int argc, char **argv);
int lcmc_coordinate_main(int argc, char **argv);
int lcmc_check_main(int argc, char **argv);  /* check.c: preflight */
int lcmc_params_main(int argc, char **argv); /* params_cmd.c: VNFC parameters for a test */
/* `lcmcoord em`: runs the EM simulator's own program, lcmcoord-em (em_exec.c). */
int lcmc_em_exec(int argc, char **argv);
/* `lcmcoord serve`: runs the EM server's own program, lcmcoord-serve (em_exec.c). */
int lcmc_serve_exec(int argc, char **argv);

#endif

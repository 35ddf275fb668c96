/* placeholder */
int lcmc_placeholder(void);
int lcmc_placeholder(void) { return 0; }

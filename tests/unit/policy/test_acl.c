/* placeholder until the policy tables land: fails on purpose */
int main(void) { return 1; }

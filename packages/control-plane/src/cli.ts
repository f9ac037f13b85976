export async function runControlPlaneCommand(_argv: string[]): Promise<number> { return 0; }

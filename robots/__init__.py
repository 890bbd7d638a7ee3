"""What a robot is: specs, URDFs and PyBullet builders."""
